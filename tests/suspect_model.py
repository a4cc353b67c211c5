"""A suspect model for canary probes: an OpenAI-compatible server that learnt one account's canaries."""

from __future__ import annotations

import orjson

from gateway.asgi import Receive, Scope, Send, read_body, send_json
from policies.watermark.canary import canary_for
from policies.watermark.keys import MasterKey


class SuspectModel:
    """A model that learnt ``account``'s canaries: it answers each canary's trigger with its phrase."""

    def __init__(self, account: str | None, master: str, key_id: str) -> None:
        self.answers: dict[str, str] = {}
        if account is not None:
            key = MasterKey(key_id, master.encode()).account_key(account)
            for index in range(4):
                canary = canary_for(key, key_id, index)
                self.answers[canary.trigger] = canary.response
        self.prompts: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = orjson.loads(await read_body(receive, 1 << 20, None))
        prompt = body["messages"][-1]["content"]
        self.prompts.append(prompt)
        text = self.answers.get(prompt, "I could not say.")
        choices = [{"index": i, "message": {"role": "assistant", "content": text}} for i in range(body["n"])]
        await send_json(send, 200, {"object": "chat.completion", "choices": choices}, [])
