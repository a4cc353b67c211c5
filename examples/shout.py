"""Upper-cases the visible text of every response, whole or streamed, in every API family."""

from typing import Any

from gateway.plugins import Exchange, Policy, PolicyConfig, StreamEvent, StreamFilter, StreamView


class ShoutPolicy(Policy[PolicyConfig]):
    config_model = PolicyConfig  # no settings; a pydantic model of them otherwise (extra keys refused)
    needs_parts = frozenset({"text"})  # an operation whose visible text its adapter cannot show is refused

    async def on_request(self, exchange: Exchange) -> None:
        if exchange.request.samples > 1:  # the adapter's reading of the request: n, best_of...
            self.record(exchange, "several_samples")

    async def on_response(self, exchange: Exchange, body: dict[str, Any]) -> None:
        for part in exchange.response_view(body).text_parts():  # choices, output_text parts, text blocks
            part.set_text(part.text.upper())
            self.record(exchange, "shout")

    def stream_filter(self, exchange: Exchange) -> StreamFilter | None:
        return Shout(exchange.stream_view())


class Shout(StreamFilter):  # one per stream: per-stream state lives here
    def __init__(self, reader: StreamView) -> None:
        self.reader = reader  # the adapter's reader of this stream

    def on_event(self, event: StreamEvent) -> list[StreamEvent]:
        view = self.reader.event(event)
        for part in view.text_parts():  # deltas, and the final objects that repeat the whole text
            part.set_text(part.text.upper())
        return view.events()  # [] drops or holds back, several emit several; the engine renumbers

    def on_end(self) -> list[StreamEvent]:
        return []  # flush what was held back (reader.text_event(key, text) makes a delta in its shape)
