from flask.views import MethodView
from flask_smorest import Blueprint

from api_server.errors import raises
from api_server.resources.common import run_operation, services
from api_server.resources.nodes.schemas import (
    AddNodeSchema,
    CapacitySchema,
    NodeAddedSchema,
    NodeListSchema,
    NodeRemovedSchema,
)
from checkpoints.operations import NodeAdd, NodeRemove
from core.errors import Conflict, NotFound, Unavailable

blp = Blueprint("nodes", __name__, url_prefix="/api/v1",
                description="Cluster nodes: list, add a worker, drain and remove one; capacity. "
                            "Adding and removing are operations: one-step runs, gated by "
                            "approvals.operations and audited")


def node_list() -> dict:
    nodes = services().nodes()
    return {"nodes": nodes, "total_nodes": len(nodes),
            "alive_nodes": sum(1 for n in nodes if n.alive)}


@blp.route("/resources/nodes")
class ResourceNodes(MethodView):
    @blp.response(200, NodeListSchema)
    def get(self):
        """Nodes: Ray nodes and platform apps merged (an app whose node is missing is shown)"""
        return node_list()


@blp.route("/nodes")
class Nodes(MethodView):
    @blp.response(200, NodeListSchema)
    def get(self):
        """Nodes (same as /resources/nodes)"""
        return node_list()


@blp.route("/resources/nodes/add")
class AddNode(MethodView):
    @blp.arguments(AddNodeSchema)
    @blp.response(201, NodeAddedSchema)
    @blp.alt_response(202, schema=NodeAddedSchema,
                      description="approvals.operations.node_add asks for an approval: the run "
                                  "waits for it (`pending` says how to give it)")
    @raises(blp, Conflict, Unavailable, conflict="a run holds the cluster lease, or the cluster "
                                                 "has no running head")
    def post(self, body):
        """Add a worker node (started on the platform, joined to Ray)"""
        params = {k: body[k] for k in ("cpu", "memory", "gpus", "wait")}
        answer, status = run_operation(NodeAdd(**params))
        return {"node_type": "worker", **params, **answer}, status or 201


@blp.route("/resources/nodes/<app_id>")
class Node(MethodView):
    @blp.response(200, NodeRemovedSchema)
    @blp.alt_response(202, schema=NodeRemovedSchema,
                      description="the removal waits for an approval (approvals.operations."
                                  "node_remove, by default): `pending` says how to give it")
    @raises(blp, NotFound, Conflict, Unavailable, notfound="no node app with that id",
            conflict="the head, or a run holds the cluster lease")
    def delete(self, app_id):
        """Drain a worker node (its work moves elsewhere), then stop and delete its app"""
        answer, status = run_operation(NodeRemove(app_id=app_id))
        return {"app_id": app_id, **answer}, status or 200


@blp.route("/resources/capacity")
class Capacity(MethodView):
    @blp.response(200, CapacitySchema)
    def get(self):
        """Cluster capacity over ALIVE nodes (memory in GB; in-use lags Ray by ~1 s)"""
        return services().capacity()
