import contextlib
import uuid

from flask.views import MethodView
from flask_smorest import Blueprint

from api_server.errors import raises
from api_server.resources.common import services
from api_server.resources.nodes.schemas import (
    AddNodeSchema,
    CapacitySchema,
    NodeAddedSchema,
    NodeListSchema,
    NodeRemovedSchema,
)
from cluster.config import NodeResources
from core.errors import Conflict, NotFound, Unavailable

blp = Blueprint("nodes", __name__, url_prefix="/api/v1",
                description="Cluster nodes: list, add a worker, drain and remove one; capacity")


@contextlib.contextmanager
def cluster_lease(what: str):
    """Node changes take the cluster lease briefly: never beside a deployment run."""
    store = services().store
    holder = f"api:{what}:{uuid.uuid4().hex[:8]}"
    store.acquire_lease(holder, None, ttl=300)
    try:
        yield
    finally:
        store.release_lease(holder)
        services().invalidate()


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
    @raises(blp, Conflict, Unavailable, conflict="a run holds the cluster lease, or the cluster "
                                                 "has no running head")
    def post(self, body):
        """Add a worker node (started on the platform, joined to Ray)"""
        lifecycle = services().cluster.lifecycle
        resources = NodeResources(cpu=body["cpu"], memory=body["memory"], gpus=body["gpus"])
        with cluster_lease("nodes.add"):
            app = lifecycle.add_workers(1, resources)[0]
            if body["wait"]:
                lifecycle.wait_alive([app], timeout=180)
        return {"status": "success", "app_id": app.id, "app_name": app.name, "cpu": app.spec.cpu,
                "memory": app.spec.memory, "gpus": app.spec.gpus, "node_type": "worker"}


@blp.route("/resources/nodes/<app_id>")
class Node(MethodView):
    @blp.response(200, NodeRemovedSchema)
    @raises(blp, NotFound, Conflict, Unavailable, notfound="no node app with that id",
            conflict="the head, or a run holds the cluster lease")
    def delete(self, app_id):
        """Drain a worker node (its work moves elsewhere), then stop and delete its app"""
        with cluster_lease("nodes.remove"):
            app = services().cluster.lifecycle.remove_worker(app_id)
        return {"status": "success", "app_id": app.id, "app_name": app.name}


@blp.route("/resources/capacity")
class Capacity(MethodView):
    @blp.response(200, CapacitySchema)
    def get(self):
        """Cluster capacity over ALIVE nodes (memory in GB; in-use lags Ray by ~1 s)"""
        return services().capacity()
