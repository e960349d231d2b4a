"""HTTP API of the registry: zones, BINs, members and their consent."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Path, Query, Request, Response, UploadFile
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse

from services.registry import domain, store
from services.registry.reference import SECTORS_FILE, ZONES_FILE, ReferenceDataError
from services.registry.service import Registry, not_found
from services.registry.settings import get_settings
from shared.auth import Principal, principal_from, require_role
from shared.http import Problem, create_app, problem_response
from shared.runtime import Runtime

settings = get_settings()
runtime = Runtime(settings)
registry: Registry | None = None
CSV_TYPES = ("text/csv", "application/csv", "text/plain")
# The token of an unsubscribe link is in its URL: keep it out of caches and referrers.
LINK_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
ONE_CLICK = "One-Click"


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    """Opens the database client for the app's lifetime."""
    global registry
    await runtime.start()
    await store.ensure_collections(runtime.db)
    registry = Registry(db=runtime.db, settings=settings)
    yield
    await runtime.stop()


app = create_app(
    title="BIN registry",
    description="The digital register of BINs, their members and consent, with the "
    "police zones and their territory as reference data.",
    checks=[runtime.kafka_problem, runtime.database_problem],
    lifespan=lifespan,
)


@app.exception_handler(domain.RuleError)
async def _rule_broken(_: Request, error: domain.RuleError) -> JSONResponse:
    return problem_response(
        422, "Invalid request", str(error),
        errors=[{"field": error.field, "reason": error.reason}],
    )


@app.exception_handler(ReferenceDataError)
async def _bad_reference(_: Request, error: ReferenceDataError) -> JSONResponse:
    return problem_response(
        422, "Invalid reference data", str(error),
        errors=[{"field": error.column or "file", "reason": error.problem}],
    )


def too_large() -> Problem:
    """The 413 for a CSV file above the limit."""
    limit = f"at most {domain.CSV_MAX_BYTES // 1024} KiB"
    return Problem(413, "Too large", f"Send {limit}.",
                   errors=[{"field": "file", "reason": f"is larger than {limit}"}])


def the_registry() -> Registry:
    """The registry bound to this process's database."""
    assert registry is not None
    return registry


def caller(request: Request) -> Principal:
    """The authenticated caller."""
    return principal_from(request, secret=settings.jwt_secret)


def optional_caller(request: Request) -> Principal | None:
    """The caller if a token was sent; self-registration needs none."""
    if "authorization" not in request.headers:
        return None
    return caller(request)


Reg = Annotated[Registry, Depends(the_registry)]
Caller = Annotated[Principal, Depends(caller)]


# Reference data ---------------------------------------------------------------


@app.post("/v1/reference/import", tags=["reference"])
async def import_reference(
    reg: Reg, who: Caller, zones: UploadFile | None = None, sectors: UploadFile | None = None
) -> dict[str, int]:
    """Loads zones, municipalities and sectors (operators only): the configured
    reference directory, or the two CSV files sent as `zones` and `sectors`."""
    require_role(who, "operator")
    if zones is None and sectors is None:
        return await reg.import_reference(directory=settings.reference_dir)
    if zones is None or sectors is None:
        raise Problem(422, "Invalid request", "Send both files, `zones` and `sectors`.")
    with tempfile.TemporaryDirectory() as folder:
        FilePath(folder, ZONES_FILE).write_bytes(await zones.read())
        FilePath(folder, SECTORS_FILE).write_bytes(await sectors.read())
        return await reg.import_reference(directory=FilePath(folder))


@app.get("/v1/zones", tags=["reference"])
async def list_zones(
    reg: Reg, province: Annotated[str | None, Query(pattern=r"^\d{5}$")] = None
) -> list[dict[str, Any]]:
    """Lists police zones, optionally of one province (NIS code)."""
    return [_zone_summary(z) for z in await reg.list_zones(province=province)]


@app.get("/v1/zones/{zone}", tags=["reference"])
async def get_zone(reg: Reg, zone: str) -> dict[str, Any]:
    """Shows a zone with its municipalities and its number of sectors."""
    found = await reg.zone_or_404(zone)
    return {**_zone_summary(found), "municipalities": found["municipalities"]}


@app.get("/v1/zones/{zone}/sectors", tags=["reference"])
async def get_zone_sectors(reg: Reg, zone: str) -> dict[str, Any]:
    """Lists the statistical sectors (territory units) of a zone."""
    found = await reg.zone_or_404(zone)
    return {"zone": zone, "sectors": found["units"]}


@app.get("/v1/postcodes/{postcode}", tags=["reference"])
async def get_postcode(reg: Reg, postcode: str) -> dict[str, Any]:
    """Shows the municipalities of a postcode and their police zones."""
    if not postcode.isdigit() or len(postcode) != 4:
        raise not_found("postcode")
    return await reg.postcode(postcode)


def _zone_summary(zone: dict[str, Any]) -> dict[str, Any]:
    return {
        "zone": zone["_id"],
        "name": zone["name"],
        "province_nis": zone["province_nis"],
        "province_name": zone["province_name"],
        "municipality_count": len(zone["municipalities"]),
        "sector_count": len(zone["units"]),
        "version": zone["version"],
    }


# BINs -------------------------------------------------------------------------


@app.post("/v1/bins", status_code=201, tags=["bins"])
async def create_bin(reg: Reg, who: Caller, body: domain.BinIn) -> dict[str, Any]:
    """Founds a BIN in a zone (operators and the zone's police staff)."""
    return await reg.create_bin(principal=who, data=body)


@app.get("/v1/bins", tags=["bins"])
async def list_bins(reg: Reg, who: Caller, zone: str | None = None) -> list[dict]:
    """Lists the BINs of a zone."""
    return await reg.list_bins(principal=who, zone=zone)


@app.get("/v1/bins/{bin_id}", tags=["bins"])
async def get_bin(reg: Reg, who: Caller, bin_id: str) -> dict[str, Any]:
    """Shows a BIN."""
    return domain.public_bin(await reg.bin_for(principal=who, bin_id=bin_id))


@app.patch("/v1/bins/{bin_id}", tags=["bins"])
async def change_bin(
    reg: Reg, who: Caller, bin_id: str, body: domain.BinPatch
) -> dict[str, Any]:
    """Changes a BIN's name, kind, territory, status or coordinators."""
    return await reg.change_bin(principal=who, bin_id=bin_id, patch=body)


@app.delete("/v1/bins/{bin_id}", status_code=204, tags=["bins"])
async def remove_bin(reg: Reg, who: Caller, bin_id: str) -> Response:
    """Removes a BIN; its topic gets a tombstone."""
    await reg.remove_bin(principal=who, bin_id=bin_id)
    return Response(status_code=204)


# Members ----------------------------------------------------------------------


@app.post("/v1/bins/{bin_id}/members", status_code=201, tags=["members"])
async def register_member(
    reg: Reg,
    bin_id: str,
    body: domain.MemberIn,
    who: Annotated[Principal | None, Depends(optional_caller)],
) -> dict[str, Any]:
    """Registers a member with explicit consent.

    A member who registers themselves gets a token for their own data; staff who
    register someone (on paper, or with a role) get none.
    """
    return await reg.register_member(principal=who, bin_id=bin_id, data=body)


@app.post("/v1/bins/{bin_id}/members/import", tags=["members"])
async def import_members(
    reg: Reg, who: Caller, bin_id: str, request: Request
) -> dict[str, Any]:
    """Imports a BIN's members from CSV (paper consent): all rows or none, idempotent."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type not in CSV_TYPES:
        raise Problem(415, "Unsupported media type", "Send the file as text/csv.")
    declared = int(request.headers.get("content-length") or 0)
    if declared > domain.CSV_MAX_BYTES:
        raise too_large()
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > domain.CSV_MAX_BYTES:
            raise too_large()
    return await reg.import_members(principal=who, bin_id=bin_id, data=data)


@app.get("/v1/bins/{bin_id}/members", tags=["members"])
async def list_members(reg: Reg, who: Caller, bin_id: str) -> list[dict[str, Any]]:
    """Lists a BIN's members without personal data."""
    return await reg.list_members(principal=who, bin_id=bin_id)


@app.get("/v1/members/{member_id}", tags=["members"])
async def read_member(reg: Reg, who: Caller, member_id: str) -> dict[str, Any]:
    """Shows everything the registry holds on a member (the read is audited)."""
    return await reg.read_member(principal=who, member_id=member_id)


@app.patch("/v1/members/{member_id}", tags=["members"])
async def correct_member(
    reg: Reg, who: Caller, member_id: str, body: domain.MemberPatch
) -> dict[str, Any]:
    """Corrects a member's data, channels, language; staff may change role and BIN."""
    return await reg.correct_member(principal=who, member_id=member_id, patch=body)


@app.get("/v1/members/{member_id}/export", tags=["members"])
async def export_member(reg: Reg, who: Caller, member_id: str) -> JSONResponse:
    """Exports a member's data and the audit trail about them as a JSON file."""
    export = await reg.export_member(principal=who, member_id=member_id)
    return JSONResponse(
        jsonable_encoder(export),
        headers={"Content-Disposition": f'attachment; filename="{member_id}.json"',
                 "Cache-Control": "no-store"},
    )


@app.post("/v1/members/{member_id}/consent/withdraw", tags=["members"])
async def withdraw_consent(reg: Reg, who: Caller, member_id: str) -> dict[str, Any]:
    """Withdraws consent: no more messages, the contacts leave the message system."""
    return await reg.withdraw_consent(principal=who, member_id=member_id)


@app.delete("/v1/members/{member_id}", status_code=204, tags=["members"])
async def erase_member(reg: Reg, who: Caller, member_id: str) -> Response:
    """Erases a member's personal data from the registry and its topics."""
    await reg.erase_member(principal=who, member_id=member_id)
    return Response(status_code=204)


@app.get("/v1/audit", tags=["audit"])
async def audit_trail(
    reg: Reg, who: Caller, target: str | None = None
) -> list[dict[str, Any]]:
    """Lists who read or changed whose data (operators only)."""
    return await reg.audit_trail(principal=who, target=target)


# Unsubscribe links ------------------------------------------------------------


def wants_html(request: Request) -> bool:
    """Whether the caller is a browser rather than an API client."""
    accept = request.headers.get("accept", "")
    return "text/html" in accept or ("application/json" not in accept and not accept)


@app.get("/v1/unsubscribe/{token}", tags=["members"], response_model=None)
async def unsubscribe_by_link(
    reg: Reg, token: str, request: Request
) -> HTMLResponse | JSONResponse:
    """Stops e-mail to the member the link names; a page in their language, or JSON."""
    outcome = await reg.unsubscribe(token=token)
    if wants_html(request):
        return HTMLResponse(domain.unsubscribed_page(language=outcome["language"]),
                            headers=LINK_HEADERS)
    return JSONResponse(outcome, headers=LINK_HEADERS)


@app.post("/v1/unsubscribe/{token}", tags=["members"])
async def unsubscribe_one_click(reg: Reg, token: str, request: Request) -> JSONResponse:
    """Stops e-mail in one click (RFC 8058: body `List-Unsubscribe=One-Click`)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        value = form.get("List-Unsubscribe")
        if value is not None and value != ONE_CLICK:
            raise Problem(422, "Invalid request", "RFC 8058 one-click expected.",
                          errors=[{"field": "List-Unsubscribe",
                                   "reason": f"must be {ONE_CLICK}"}])
    return JSONResponse(await reg.unsubscribe(token=token), headers=LINK_HEADERS)


# Directory of BIN actors --------------------------------------------------------


@app.put("/v1/bins/{bin_id}/police-contact", tags=["directory"])
async def set_police_contact(
    reg: Reg, who: Caller, bin_id: str, body: domain.ListedContactIn
) -> dict[str, Any]:
    """Lists a BIN's police contact with the details sent (operators, zone staff)."""
    return await reg.set_police_contact(principal=who, bin_id=bin_id, data=body)


@app.delete("/v1/bins/{bin_id}/police-contact", status_code=204, tags=["directory"])
async def remove_police_contact(reg: Reg, who: Caller, bin_id: str) -> Response:
    """Takes a BIN's police contact out of the directory."""
    await reg.remove_police_contact(principal=who, bin_id=bin_id)
    return Response(status_code=204)


@app.put("/v1/municipalities/{nis}/prevention-officer", tags=["directory"])
async def set_prevention_officer(
    reg: Reg, who: Caller, nis: Annotated[str, Path(pattern=r"^\d{5}$")],
    body: domain.ListedContactIn,
) -> dict[str, Any]:
    """Lists a municipality's prevention officer (operators, the zone's staff)."""
    return await reg.set_prevention_officer(principal=who, nis=nis, data=body)


@app.delete("/v1/municipalities/{nis}/prevention-officer", status_code=204,
            tags=["directory"])
async def remove_prevention_officer(
    reg: Reg, who: Caller, nis: Annotated[str, Path(pattern=r"^\d{5}$")]
) -> Response:
    """Takes a municipality's prevention officer out of the directory."""
    await reg.remove_prevention_officer(principal=who, nis=nis)
    return Response(status_code=204)


@app.get("/v1/directory", tags=["directory"], response_model=None)
async def read_directory(
    reg: Reg, who: Caller, request: Request,
    province: Annotated[str | None, Query(pattern=r"^\d{5}$")] = None,
    zone: Annotated[str | None, Query(min_length=1, max_length=20)] = None,
    municipality: Annotated[str | None, Query(pattern=r"^\d{5}$")] = None,
    format: Annotated[Literal["json", "csv"] | None, Query()] = None,
) -> list[dict[str, Any]] | Response:
    """Lists coordinators, police contacts and prevention officers with only their
    listed details (operators and study services; every read is audited)."""
    wanted = domain.DirectoryFilter(province=province, zone=zone,
                                    municipality=municipality)
    rows = await reg.read_directory(principal=who, wanted=wanted)
    accept = request.headers.get("accept", "")
    if format == "csv" or (format is None and "text/csv" in accept):
        return Response(domain.directory_csv(rows), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition":
                                 'attachment; filename="bin-directory.csv"',
                                 "Cache-Control": "no-store"})
    return rows
