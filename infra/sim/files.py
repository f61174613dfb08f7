"""Routes for uploads (E5, E6), the asset list and delete (E7, E8) and asset downloads (E9)."""

from __future__ import annotations

import base64
import binascii

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from infra.sim.assets import iso, parse_multipart
from infra.sim.gate import admit, session_token
from infra.sim.state import SimState
from infra.sim.wire import bad_request, json_response

_DOWNLOAD_DENIED = {"code": 7, "message": "Permission denied", "details": []}


def routes(state: SimState) -> list[Route]:
    async def upload_json(request: Request) -> Response:
        account = await admit(state, request)
        if isinstance(account, Response):
            return account
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return bad_request("Invalid request: body is not valid JSON")
        if not isinstance(body, dict):
            return bad_request("Invalid request: body must be a JSON object")
        for key in ("fileName", "fileMimeType", "content"):
            if not isinstance(body.get(key), str) or not body[key]:
                return bad_request(f"Invalid request: missing required field `{key}`")
        if body["content"].startswith("data:"):
            return bad_request("Invalid request: content must be bare base64, not a data URI")
        try:
            data = base64.b64decode(body["content"], validate=True)
        except (binascii.Error, ValueError):
            return bad_request("Invalid request: content is not valid base64")
        asset = state.assets.upload(account.user_id, data, body["fileMimeType"], body["fileName"])
        return json_response(
            {
                "fileMetadataId": asset.asset_id,
                "fileMimeType": asset.mime,
                "fileName": asset.name,
                "fileUri": asset.path,
                "parsedFileUri": "",
                "createTime": iso(asset.created),
                "fileSource": "SELF_UPLOAD_FILE_SOURCE",
            }
        )

    async def upload_multipart(request: Request) -> Response:
        account = await admit(state, request)
        if isinstance(account, Response):
            return account
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            return bad_request("Invalid request: expected multipart/form-data")
        parts = parse_multipart(await request.body(), content_type)
        files = [(info, data) for info, data in parts if info.get("name") == "file" and "filename" in info]
        if not files:
            return bad_request("Invalid request: missing form part `file`")
        info, data = files[0]
        source = next(
            (d.decode() for i, d in parts if i.get("name") == "file_source"), "SELF_UPLOAD_FILE_SOURCE"
        )
        asset = state.assets.upload(
            account.user_id, data, info.get("content-type", "application/octet-stream"), info["filename"]
        )
        return json_response(
            {
                "uploadId": "upload_" + asset.asset_id.replace("-", "")[:16],
                "fileMetadata": {
                    "fileMetadataId": asset.asset_id,
                    "fileMimeType": asset.mime,
                    "fileName": asset.name,
                    "fileUri": asset.path,
                    "createTime": iso(asset.created),
                    "fileSource": source,
                },
            }
        )

    async def list_assets(request: Request) -> Response:
        account = await admit(state, request)
        if isinstance(account, Response):
            return account
        page_size = max(1, min(int(request.query_params.get("pageSize", "50") or 50), 200))
        start = int(request.query_params.get("pageToken", "0") or 0)
        owned = state.assets.owned_by(account.user_id)
        page = owned[start : start + page_size]
        items = [
            {
                "assetId": a.asset_id,
                "mimeType": a.mime,
                "name": a.name,
                "sizeBytes": str(len(a.data)),
                "createTime": iso(a.created),
                "lastUseTime": iso(a.created),
                "summary": "",
                "key": a.path,
                "previewImageKey": "",
                "isDeleted": False,
                "isLatest": True,
                "source": "SOURCE_SELF_UPLOAD" if a.source == "upload" else "SOURCE_GENERATED",
            }
            for a in page
        ]
        token = str(start + page_size) if start + page_size < len(owned) else ""
        return json_response({"assets": items, "nextPageToken": token})

    async def delete_asset(request: Request) -> Response:
        account = await admit(state, request)
        if isinstance(account, Response):
            return account
        asset = state.assets.by_id(request.path_params["asset_id"])
        if asset is None or asset.owner != account.user_id:
            return bad_request("Asset not found", 404, 5)
        state.assets.delete(asset.asset_id)
        return json_response({})

    async def download(request: Request) -> Response:
        # The assets host only knows the session cookie; a missing or foreign one is a plain 403.
        token = session_token(request)
        account = state.accounts.get(token) if token else None
        if account is None or account.expired:
            return json_response(_DOWNLOAD_DENIED, 403)
        asset = state.assets.by_path(request.url.path)
        if asset is None:
            return Response("Not Found", 404, media_type="text/plain")
        if asset.owner != account.user_id:
            return json_response(_DOWNLOAD_DENIED, 403)
        return Response(
            asset.data, media_type=asset.mime, headers={"cache-control": "private, max-age=31536000"}
        )

    return [
        Route("/rest/app-chat/upload-file", upload_json, methods=["POST"]),
        Route("/http/upload-file-v2/direct", upload_multipart, methods=["POST"]),
        Route("/rest/assets", list_assets, methods=["GET"]),
        Route("/rest/assets-metadata/{asset_id}", delete_asset, methods=["DELETE"]),
        Route("/users/{path:path}", download, methods=["GET", "HEAD"]),
    ]
