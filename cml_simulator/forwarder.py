"""CML's proxy inside a pod (pods mode): the workspace's edge reaches an application's
``127.0.0.1:$CDSW_APP_PORT`` through it, as CML forwards an app's public URL there.

    python cml_simulator/forwarder.py LISTEN_HOST LISTEN_PORT TARGET_PORT EDGE_ADDRESS

It listens on the pod's own address and relays every connection from the edge (and from
nobody else) to the app's port on the pod's loopback. Stdlib only: it runs in the pod.
"""
import asyncio
import sys


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def serve(listen_host: str, listen_port: int, target_port: int, edge: str) -> None:
    async def relay(reader, writer):
        if writer.get_extra_info("peername")[0] != edge:  # only the edge, as in CML
            writer.close()
            return
        try:
            app_reader, app_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:  # the app does not listen (yet): the edge answers 502
            writer.close()
            return
        await asyncio.gather(pipe(reader, app_writer), pipe(app_reader, writer))

    server = await asyncio.start_server(relay, listen_host, listen_port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    host, port, target, edge_address = sys.argv[1:5]
    asyncio.run(serve(host, int(port), int(target), edge_address))
