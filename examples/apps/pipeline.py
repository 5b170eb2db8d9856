"""A two-deployment Serve app: an ingress that calls a model. The model's replicas and their
memory come from the builder's args, so a test can make an app that fits only while every
worker exists (``{"replicas": 3, "memory_gb": 0.7}`` on three 1 GB nodes)."""
from ray import serve
from starlette.requests import Request


@serve.deployment
class Model:
    def __call__(self, text: str) -> dict:
        return {"label": "positive" if "good" in text else "negative"}


@serve.deployment(ray_actor_options={"num_cpus": 0.05})
class Ingress:
    def __init__(self, model):
        self.model = model

    async def __call__(self, request: Request) -> dict:
        return await self.model.remote(request.query_params.get("text", ""))


def build(args: dict) -> serve.Application:
    model = Model.options(num_replicas=int(args.get("replicas", 1)), ray_actor_options={
        "num_cpus": float(args.get("cpus", 0)),
        "memory": int(float(args.get("memory_gb", 0.1)) * 1024 ** 3)})
    return Ingress.bind(model.bind())
