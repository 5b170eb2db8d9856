"""A small Ray Serve app: answers GET with a greeting and the node that served it."""
import os

from ray import serve
from starlette.requests import Request


@serve.deployment(ray_actor_options={"num_cpus": 0.1})
class Hello:
    def __init__(self, greeting: str = "hello"):
        self.greeting = greeting

    async def __call__(self, request: Request) -> dict:
        name = request.query_params.get("name", "world")
        return {"message": f"{self.greeting}, {name}", "node_ip": os.environ.get("CDSW_IP_ADDRESS")}


def build(args: dict) -> serve.Application:
    """Builder for configs that pass ``args`` (e.g. ``{"greeting": "hi"}``)."""
    return Hello.bind(args.get("greeting", "hello"))


app = Hello.bind()
