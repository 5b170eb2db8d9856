from marshmallow import Schema, fields


class WhoAmISchema(Schema):
    principal = fields.String(required=True, metadata={
        "description": "the token's principal; 'anonymous' when the API has no tokens"})
    roles = fields.List(fields.String(), required=True)
    auth_enabled = fields.Boolean(required=True)
    forbid_self_approval = fields.Boolean(required=True, metadata={
        "description": "approvals.forbid_self_approval: a requester may not approve its own "
                       "destructive gates"})
