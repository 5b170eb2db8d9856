from marshmallow import Schema, fields, validate

from cluster.config.model import NOTIFICATION_EVENTS

STATUSES = ("pending", "delivered", "failed")


class DeliverySchema(Schema):
    id = fields.String(required=True)
    event = fields.String(required=True)
    target = fields.String(required=True, metadata={"description": "the target's name (its URL "
                                                                   "and secret are never shown)"})
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    attempts = fields.Integer(required=True)
    last_error = fields.String(allow_none=True)
    run_id = fields.String(allow_none=True)
    checkpoint = fields.String(allow_none=True)
    created_at = fields.Float(required=True, metadata={"description": "Unix time, seconds"})
    updated_at = fields.Float(required=True)
    payload = fields.Dict(required=True, metadata={"description": "what was sent (webhooks: the "
                                                                 "signed body)"})


class DeliveryListSchema(Schema):
    deliveries = fields.List(fields.Nested(DeliverySchema), required=True)
    targets = fields.List(fields.String(), required=True, metadata={
        "description": "the configured targets' names"})


class DeliveryQuerySchema(Schema):
    status = fields.String(validate=validate.OneOf(STATUSES))
    event = fields.String(validate=validate.OneOf((*NOTIFICATION_EVENTS, "test")))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))
