"""`/_sandbox/faults`: set (POST, only the keys given), show (GET) and clear (DELETE)
the injected faults described in `sandbox.faults`."""

from __future__ import annotations

from aiohttp import web

from sandbox.control import PREFIX, ControlError, read_body, world_in
from sandbox.faults import FaultConfigError, Faults, apply_settings, faults_json
from sandbox.world import World

routes = web.RouteTableDef()


def _answer(world: World) -> web.StreamResponse:
    return web.json_response(
        faults_json(world.faults, world.now(), enforce_rate_limits=world.enforce_rate_limits)
    )


@routes.get(PREFIX + "/faults")
async def read_faults(request: web.Request) -> web.StreamResponse:
    return _answer(world_in(request))


@routes.post(PREFIX + "/faults")
async def set_faults(request: web.Request) -> web.StreamResponse:
    world = world_in(request)
    body = await read_body(request)
    try:
        platform_settings = apply_settings(world.faults, body, world.now())
    except FaultConfigError as error:
        raise ControlError(400, str(error)) from None
    for attribute, value in platform_settings.items():
        setattr(world, attribute, value)
    return _answer(world)


@routes.delete(PREFIX + "/faults")
async def clear_faults(request: web.Request) -> web.StreamResponse:
    """Every fault off again and the platform's own rate limits back (enforced, at their
    real numbers); the seed back to 0."""
    world = world_in(request)
    world.faults = Faults()
    world.enforce_rate_limits = True
    return _answer(world)
