"""Deals (and moving them through stages), pipelines, loss reasons, tasks."""

from __future__ import annotations

from aiohttp import web

from hub.crm import bulk, deals, pipelines, tasks
from hub.web import export
from hub.web.api import schemas
from hub.web.api.common import Filter, Resource, ok
from hub.web.errors import json_body, path_id, query_choice, query_int
from hub.web.keys import DB, USER
from hub.web.routing import Param, Routes, page_of, ref

routes = Routes("deals")

Resource(
    "deals", "Deal", deals.create_deal, deals.get_deal, deals.update_deal, deals.delete_deal,
    deals.list_deals, schemas.DEAL_IN, regional=("list",),
    filters=(
        Filter(Param("pipeline", "integer", "the pipeline's id"), "pipeline_id", query_int),
        Filter(Param("stage", "integer", "the stage's id"), "stage_id", query_int),
        Filter(Param("responsible", "integer", "the responsible user's id"), "responsible_id", query_int),
        Filter(Param("tag", description="a tag name"), "tag"),
        Filter(Param("client", "integer", "the client's id"), "client_id", query_int),
        Filter(Param("lead", "integer", "the lead's id"), "lead_id", query_int),
        Filter(Param("q", description="the title, the client's or lead's name, phone or e-mail"), "q"),
    ),
    export=export.DEALS,
).register(routes)

Resource(
    "pipelines", "Pipeline", pipelines.create_pipeline, pipelines.get_pipeline, pipelines.update_pipeline,
    pipelines.delete_pipeline, pipelines.list_pipelines, schemas.PIPELINE_IN, paged=False,
).register(routes)

TASK_FILTERS = ("mine", "overdue", "today", "done", "open")


def _task_filter(request: web.Request, name: str) -> str | None:
    return query_choice(request, name, TASK_FILTERS)


Resource(
    "tasks", "Task", tasks.create_task, tasks.get_task, tasks.update_task, tasks.delete_task,
    tasks.list_tasks, schemas.TASK_IN, export=export.TASKS,
    filters=(
        Filter(Param("assignee", "integer", "the assignee's id"), "assignee_id", query_int),
        Filter(Param("filter", {"enum": list(TASK_FILTERS)}, "a ready-made selection"), "filter",
               _task_filter),
        Filter(Param("deal", "integer", "the deal's id"), "deal_id", query_int),
        Filter(Param("client", "integer", "the client's id"), "client_id", query_int),
        Filter(Param("lead", "integer", "the lead's id"), "lead_id", query_int),
    ),
).register(routes)


@routes.post("/api/v1/deals/{id}/move", "Move a deal to another stage (writes a stage-change entry)",
             request=schemas.MOVE_IN, response=ref("Deal"), errors=(400, 401, 403, 404, 422))
async def move_deal(request: web.Request) -> web.Response:
    deal_id = path_id(request)
    data = await json_body(request)
    async with request.app[DB].transaction() as s:
        return ok(await deals.move_deal(s, request[USER], deal_id, data))


@routes.post("/api/v1/tasks/{id}/complete", "Mark a task done", response=ref("Task"),
             errors=(401, 403, 404))
async def complete_task(request: web.Request) -> web.Response:
    task_id = path_id(request)
    async with request.app[DB].transaction() as s:
        return ok(await tasks.complete_task(s, request[USER], task_id))


@routes.get("/api/v1/loss-reasons", "The reasons offered when a deal is lost",
            response=page_of("LossReason"), errors=(401,))
async def list_loss_reasons(request: web.Request) -> web.Response:
    async with request.app[DB].reading() as s:
        return ok(await pipelines.list_loss_reasons(s))


@routes.post("/api/v1/loss-reasons", "Offer a new loss reason (administrators)",
             request=schemas.LOSS_REASON_IN, response=ref("LossReason"), status=201,
             errors=(400, 401, 403, 409, 422))
async def create_loss_reason(request: web.Request) -> web.Response:
    data = await json_body(request)
    async with request.app[DB].transaction() as s:
        return ok(await pipelines.create_loss_reason(s, request[USER], data), 201)


@routes.post("/api/v1/deals/bulk", "One action on many deals: responsible, tag (added), stage, delete",
             request=schemas.bulk_in(bulk.DEAL_ACTIONS, "responsible: a user id; tag: a tag name; stage: a "
                                     "stage id of the deals' pipeline; delete: none"),
             response=schemas.BULK_OUT, errors=(400, 401, 403, 422))
async def bulk_deals(request: web.Request) -> web.Response:
    data = await json_body(request)
    async with request.app[DB].transaction() as s:
        return ok(await bulk.bulk_deals(s, request[USER], data))
