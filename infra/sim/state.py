"""Everything the simulator remembers between requests, in one object shared by all routes."""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field

from infra.sim.accounts import Accounts
from infra.sim.assets import AssetStore
from infra.sim.build import Build
from infra.sim.requestlog import RequestLog

STATSIG_POLICIES = ("base64", "v3", "signed", "any", "off")
DEFAULT_UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/136.0.0.0 Safari/537.36"


@dataclass(slots=True)
class SimConfig:
    """Server-wide behaviour; `SimServer.reset()` restores the values it was built with."""

    unauth_status: int = 400  # status for a missing/unknown session; 401 mimics the [v3] path
    # base64: present and decodable; v3: decodes to 70 bytes; signed: a value signed for this
    # method and path with the current build's curves and indices, within `statsig_window`
    # seconds (what grok.com checks); any: present; off
    statsig: str = "base64"
    statsig_window: float = 300.0
    challenge_all: bool = False  # every grok.com request needs a cf_clearance the sim handed out
    clearance_binds_ua: bool = True  # like Cloudflare, a clearance only counts with the UA it was issued to
    solver_user_agent: str = DEFAULT_UA
    rest_chat_status: int = 0  # non-zero: REST chat is retired with this status (the WebSocket still works)
    clearance_ttl: float = 1800.0  # seconds a cf_clearance it issued stays valid


@dataclass(slots=True)
class Conversation:
    owner: str
    response_ids: set[str] = field(default_factory=set)


class Conversations:
    """Bounded: long benchmarks create many temporary conversations."""

    def __init__(self, maxlen: int = 50000) -> None:
        self._items: OrderedDict[str, Conversation] = OrderedDict()
        self._maxlen = maxlen
        self._lock = threading.Lock()

    def create(self, owner: str, conversation_id: str | None = None) -> str:
        cid = conversation_id or str(uuid.uuid4())
        with self._lock:
            self._items[cid] = Conversation(owner)
            while len(self._items) > self._maxlen:
                self._items.popitem(last=False)
        return cid

    def get(self, cid: str) -> Conversation | None:
        return self._items.get(cid)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class SimState:
    def __init__(self, assets_url: str, accept_any: bool = False, config: SimConfig | None = None) -> None:
        self.assets_url = assets_url.rstrip("/") + "/"
        self.accounts = Accounts(accept_any=accept_any)
        self.log = RequestLog()
        self.assets = AssetStore()
        self.conversations = Conversations()
        self.posts: dict[str, dict[str, str]] = {}
        # cf_clearance value -> (the user agent it was issued to, when it expires)
        self.clearances: dict[str, tuple[str, float]] = {}
        self.solves = 0  # FlareSolverr solves served (tests count them)
        self.solve_requests: list[dict[str, object]] = []
        self.build = Build()
        self._defaults = config or SimConfig()
        self.config = dataclasses.replace(self._defaults)

    def issue_clearance(self, user_agent: str) -> tuple[str, float]:
        value = "simcf." + secrets.token_urlsafe(24)
        expires = time.time() + self.config.clearance_ttl
        self.clearances[value] = (user_agent, expires)
        return value, expires

    def cleared(self, value: str | None, user_agent: str | None) -> bool:
        issued = self.clearances.get(value) if value else None
        if issued is None or issued[1] <= time.time():
            return False
        return not self.config.clearance_binds_ua or issued[0] == (user_agent or "")

    def expire_clearances(self) -> None:
        """Every clearance handed out so far stops counting (Cloudflare rotated them)."""
        self.clearances = {k: (ua, 0.0) for k, (ua, _) in self.clearances.items()}

    def rotate_build(self) -> Build:
        """A frontend deploy: new curves, indices and chunk; old statsig values stop working."""
        number = self.build.number + 1
        self.build = Build()
        self.build.number = number
        return self.build

    def reset(self) -> None:
        self.accounts.reset()
        self.log.clear()
        self.assets.clear()
        self.conversations.clear()
        self.posts.clear()
        self.clearances.clear()
        self.solves = 0
        self.solve_requests.clear()
        self.build = Build()
        self.config = dataclasses.replace(self._defaults)
