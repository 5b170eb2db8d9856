"""One package per resource; this tuple registers them, in the spec's tag order."""
from api_server.resources.applications.routes import blp as applications
from api_server.resources.approvals.routes import blp as approvals
from api_server.resources.audit.routes import blp as audit
from api_server.resources.checkpoints.routes import blp as checkpoints
from api_server.resources.cluster.routes import blp as cluster
from api_server.resources.deployments.routes import blp as deployments
from api_server.resources.health.routes import blp as health
from api_server.resources.hosts.routes import blp as hosts
from api_server.resources.nodes.routes import blp as nodes
from api_server.resources.notifications.routes import blp as notifications
from api_server.resources.plan.routes import blp as plan
from api_server.resources.session.routes import blp as session

BLUEPRINTS = (health, plan, checkpoints, approvals, deployments, nodes, applications, cluster,
              hosts, audit, notifications, session)
