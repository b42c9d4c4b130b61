"""Clients, contact persons, leads (and converting a lead), users, the caller's own profile, identify."""

from __future__ import annotations

from aiohttp import web

from hub.crm import bulk, clients, contacts, identify, leads, users
from hub.crm.errors import ValidationError
from hub.web import export
from hub.web.api import schemas
from hub.web.api.common import Filter, Resource, ok, region
from hub.web.errors import json_body, optional_json_body, path_id, query_bool, query_int, query_text
from hub.web.keys import DB, USER
from hub.web.routing import Param, Routes, ref

routes = Routes("people")
EVERYWHERE = ("create", "update", "list")

Resource(
    "clients", "Client", clients.create_client, clients.get_client, clients.update_client,
    clients.delete_client, clients.list_clients, schemas.CLIENT_IN, regional=EVERYWHERE,
    export=export.CLIENTS,
    filters=(
        Filter(Param("q", description="part of the name, a phone, an e-mail or an INN"), "q"),
        Filter(Param("manager", "integer", "the managing user's id"), "manager_id", query_int),
        Filter(Param("tag", description="a tag name"), "tag"),
        Filter(Param("region", description="the client's region"), "region_name"),
    ),
).register(routes)

Resource(
    "contacts", "Contact", contacts.create_contact, contacts.get_contact, contacts.update_contact,
    contacts.delete_contact, contacts.list_contacts, schemas.CONTACT_IN, regional=EVERYWHERE,
    filters=(
        Filter(Param("client", "integer", "the client's id"), "client_id", query_int),
        Filter(Param("q", description="part of the name"), "q"),
    ),
).register(routes)

Resource(
    "leads", "Lead", leads.create_lead, leads.get_lead, leads.update_lead, leads.delete_lead,
    leads.list_leads, schemas.LEAD_IN, regional=EVERYWHERE, export=export.LEADS,
    filters=(
        Filter(Param("q", description="part of the name, a phone or an e-mail"), "q"),
        Filter(Param("unsorted", "boolean", "only leads nobody has taken yet (or only taken ones)"),
               "unsorted", query_bool),
        Filter(Param("manager", "integer", "the managing user's id"), "manager_id", query_int),
    ),
).register(routes)

Resource(
    "users", "User", users.create_user, users.get_user, users.update_user, users.delete_user,
    users.list_users, schemas.USER_IN, regional=("create", "update"),
    filters=(Filter(Param("active", "boolean", "only active (or only deactivated) users"), "active",
                    query_bool),),
).register(routes)


@routes.post("/api/v1/leads/{id}/convert", "Convert a lead into a client (and a contact person)",
             request=schemas.CONVERT_IN, response=schemas.CONVERT_OUT, errors=(401, 403, 404, 409, 422))
async def convert_lead(request: web.Request) -> web.Response:
    lead_id = path_id(request)
    data = await optional_json_body(request)
    async with request.app[DB].transaction() as s:
        return ok(await leads.convert_lead(s, request[USER], lead_id, data, region=region(request)))


@routes.post("/api/v1/leads/{id}/reject", "Reject a lead from Unsorted with a reason (taking it undoes that)",
             request=schemas.REJECT_IN, response=ref("Lead"), errors=(401, 403, 404, 409, 422))
async def reject_lead(request: web.Request) -> web.Response:
    lead_id = path_id(request)
    data = await optional_json_body(request)
    async with request.app[DB].transaction() as s:
        return ok(await leads.reject_lead(s, request[USER], lead_id, data))


@routes.get("/api/v1/me", "The calling user", response=ref("User"), errors=(401,))
async def me(request: web.Request) -> web.Response:
    user = request[USER]
    async with request.app[DB].reading() as s:
        return ok(await users.get_user(s, user, user.id))


@routes.get("/api/v1/identify", "Who owns a phone number, e-mail or Telegram account",
            response=schemas.IDENTIFY_OUT, errors=(401, 422),
            params=(Param("phone", description="any format: 8 (916) 123-45-67, +7 916 123 45 67, 9161234567"),
                    Param("email"), Param("telegram", description="@username or numeric id")))
async def identify_route(request: web.Request) -> web.Response:
    keys = {name: query_text(request, name) for name in ("phone", "email", "telegram")}
    if not any(keys.values()):
        raise ValidationError({"phone": "give phone, email or telegram"})
    async with request.app[DB].reading() as s:
        # by the caller's access: a person they may not open is only {"type", "access": false}
        matches = await identify.identify_for(s, request[USER], **keys, region=region(request))
    return ok({"matches": matches})


@routes.post("/api/v1/clients/bulk", "One action on many clients: manager, tag (added), delete",
             request=schemas.bulk_in(bulk.CLIENT_ACTIONS,
                                     "manager: a user id; tag: a tag name; delete: none"),
             response=schemas.BULK_OUT, errors=(400, 401, 403, 422))
async def bulk_clients(request: web.Request) -> web.Response:
    data = await json_body(request)
    async with request.app[DB].transaction() as s:
        return ok(await bulk.bulk_clients(s, request[USER], data, region=region(request)))
