"""The simulator's frontend build: the page that carries the statsig seed and animation curves
(E23 `/index`, `/`), the JavaScript chunk that carries the seed indices, and the check a signed
`x-statsig-id` must pass (docs/protocol.md#statsig). `rotate()` is a frontend deploy: new curves, new
indices, a new chunk name, so values built from the old build are refused ("out of date").
"""

from __future__ import annotations

import base64
import json
import random
import secrets

from infra.sim.statsig_check import check as check_value

# The live meta name uses a horizontal bar (U+2015) instead of the hyphen: the client must cope.
META_NAME = "grok\u2015site\u2015verification"


class Build:
    """One deploy: 4 x 16 curves, (S, A, B, C), the group index and the chunk's file name."""

    def __init__(self, rng: random.Random | None = None) -> None:
        rng = rng or random.Random(secrets.randbits(64))
        self.curves = tuple(
            tuple(tuple(rng.randrange(256) for _ in range(11)) for _ in range(16)) for _ in range(4)
        )
        picks = rng.sample(range(6, 48), 4)
        self.indices = (picks[0], picks[1], picks[2], picks[3])
        self.group_index = 5
        self.chunk = f"{rng.getrandbits(64):016x}"
        self.decoy = f"{rng.getrandbits(64):016x}"
        self.number = 0  # how many rotations came before

    def page(self) -> str:
        """A fresh page load: a new seed every time, like the real one."""
        seed = base64.b64encode(secrets.token_bytes(48)).decode("ascii")
        groups = ",".join(
            json.dumps({"css_class": f"r-{g:02x}{self.chunk[:6]}", "curves": [list(c) for c in group]})
            for g, group in enumerate(self.curves)
        )
        # The table sits in the RSC payload as an escaped JSON string, as on grok.com.
        rsc = json.dumps(f'3:["$","div",null,{{"animations":[{groups}]}}]')
        return (
            "<!DOCTYPE html><html><head>"
            f'<meta name="{META_NAME}" content="{seed}">'
            f'<script src="/_next/static/chunks/{self.decoy}.js" async=""></script>'
            f'<script src="/_next/static/chunks/{self.chunk}.js" async=""></script>'
            "<title>Grok</title></head><body>"
            f"<script>self.__next_f.push([1,{rsc}])</script>"
            "</body></html>"
        )

    def chunk_js(self, name: str) -> str | None:
        if name == self.decoy:
            return '"use strict";(self.webpackChunk=self.webpackChunk||[]).push([[1],{1:function(e){e.exports={}}}]);'
        if name != self.chunk:
            return None
        s, a, b, c = self.indices
        return (
            '"use strict";(self.webpackChunk=self.webpackChunk||[]).push([[7],{7:function(e,t,n){'
            f"let r=n.g[o[{self.group_index}]%4],i=r[Math.floor(u(o[{s}],16))];"
            f"let l=u(o[{a}], 16)*u(o[{b}],16)*u(o[{c}],16);return [i,l]}}}}]);"
        )

    def check(self, value: str | None, method: str, path: str, now: float, window: float) -> str | None:
        """Why `value` fails under this build, or None."""
        if not value:
            return "missing"
        return check_value(value, method, path, self.curves, self.indices, self.group_index, now, window)
