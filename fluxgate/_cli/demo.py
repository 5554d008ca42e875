"""``fluxgate demo``: a small support-desk app whose Claude calls are costed by feature, user and step.

The app talks to fluxgate's in-process fake of the Messages API (the real
wire format, realistic usage, prompt caching), so it runs offline and costs
nothing. It shows:

- a decorated endpoint (``@track(feature=...)``),
- a multi-step pipeline with nested steps, grounded in a cached knowledge base,
- a streamed chat,
- one failing call, recorded before its exception reaches the app;

then prints the report of what the store recorded, and compares it with the
fake's Admin API usage and cost reports (``fluxgate reconcile``), which also
bill some spend nobody tracked (a prompt tried out in the Console), so
coverage is not 100 %. ``examples/demo.py`` runs the same app.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, Final

from .._ids import now_ms
from .._lifecycle import flush, init, shutdown
from .._models import AiEventUser, Usage
from .._pricing import PriceTable
from .._reconcile import AnsweredCall, saved_path, serve_admin_api
from .._reconcile import main as reconcile_main
from .._track import track, track_context
from ..testing import FakeAnthropicAPI, FakeReply, FakeRequest
from .args import EXIT_USAGE, _db_help, _ExitError, _Parser

__all__ = ["MODEL", "make_fake", "reconcile_demo", "run_app", "run_demo", "untracked_usage"]

MODEL: Final = "claude-haiku-4-5"
#: A made-up admin key for the fake Admin API: never a real one, and never sent anywhere else.
_DEMO_ADMIN_KEY: Final = "sk-ant-admin01-fluxgate-demo"

# The help-centre articles every answer is grounded in: sent with each
# pipeline step and cached, so after the first step they are read from the
# prompt cache at a tenth of the input price.
KNOWLEDGE_BASE: Final = "\n".join(
    f"Article {n}: how to export data, manage invoices and reset passwords, step {n}." for n in range(1, 120)
)


def invalid_requests_fail(request: FakeRequest) -> FakeReply | None:
    """Make the fake reject what the real API rejects: max_tokens below 1."""
    body = request.body if isinstance(request.body, dict) else {}
    if int(body.get("max_tokens", 1)) < 1:
        error = {"type": "invalid_request_error", "message": "max_tokens: must be greater than or equal to 1"}
        return FakeReply(status=400, json_body={"type": "error", "error": error})
    return None


def untracked_usage(at_ms: int) -> list[AnsweredCall]:
    """Spend the Admin API bills that no tracked call made: someone trying a prompt in the Console."""
    usage = Usage(input_tokens=2_400, output_tokens=500)
    cost = PriceTable.default().price(MODEL, usage, at_ms=at_ms)
    return [
        AnsweredCall(
            at_ms=at_ms,
            model=MODEL,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cost_usd=cost.total_usd,
            cost_breakdown=dict(cost.breakdown),
        )
    ]


def make_fake() -> FakeAnthropicAPI:
    """The fake Messages API the demo talks to, with the untracked Console spend in its Admin reports."""
    return FakeAnthropicAPI(responder=invalid_requests_fail, untracked_usage=untracked_usage(now_ms()))


# -- the app ----------------------------------------------------------------


def ask(client: Any, prompt: str, max_tokens: int = 200, *, grounded: bool = False) -> str:
    """One Messages call; ``grounded`` sends the knowledge base, marked for the prompt cache."""
    extra: dict[str, Any] = {}
    if grounded:
        extra["system"] = [{"type": "text", "text": KNOWLEDGE_BASE, "cache_control": {"type": "ephemeral"}}]
    message = client.messages.create(
        model=MODEL, max_tokens=max_tokens, messages=[{"role": "user", "content": prompt}], **extra
    )
    return "".join(block.text for block in message.content if block.type == "text")


@track(feature="ticket-summary")
def summarize_ticket(client: Any, ticket: str) -> str:
    """An endpoint: one call, tagged with its feature."""
    return ask(client, f"Summarize this support ticket in one sentence:\n{ticket}", max_tokens=400)


@track(feature="answer-pipeline")
def answer_question(client: Any, question: str) -> str:
    """A pipeline: retrieve, rerank, then draft; each step is its own scope."""
    with track_context(step="expand-query"):
        queries = ask(client, f"Give three search queries for: {question}", max_tokens=80)
    with track_context(step="rerank", metadata={"candidates": 12}):
        ask(client, f"Rank articles for relevance to {question!r}:\n{queries}", max_tokens=60, grounded=True)
    with track_context(step="draft"):
        draft = ask(client, f"Answer the customer: {question}", max_tokens=400, grounded=True)
        with track_context(step="draft/self-check"):
            ask(client, f"Check this answer against the articles:\n{draft}", max_tokens=400, grounded=True)
    return draft


async def chat(client: Any, prompt: str) -> str:
    """A streamed chat reply, as a web handler would relay it."""
    parts: list[str] = []
    async with track_context(feature="live-chat", step="reply"):
        stream = await client.messages.create(
            model=MODEL, max_tokens=200, messages=[{"role": "user", "content": prompt}], stream=True
        )
        async for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                parts.append(event.delta.text)
    return "".join(parts)


def broken_call(client: Any, out: IO[str]) -> None:
    """A call the API refuses; fluxgate records it, then the app sees the error."""
    with track_context(feature="ticket-summary", step="retry-with-bad-settings"):
        try:
            ask(client, "This request is invalid.", max_tokens=0)
        except Exception as exc:
            # anthropic.BadRequestError; _cli does not import anthropic, so it is told by what fluxgate hung on it.
            response = getattr(exc, "fluxgate_cost_tracking_response", None)
            if response is None or getattr(exc, "status_code", None) != 400:
                raise
            print(f"  expected failure recorded: {response.status} ({response.error_message})", file=out)


def run_app(client: Any, async_client: Any, out: IO[str]) -> None:
    """Two customers use the app: summaries, answers, a chat and a failing call."""
    customer = AiEventUser("cust-042", name="Acme Corp", monthly_revenue=499.0)
    with track_context(user=customer, session_id="sess-1"):
        print(
            "  summary:", summarize_ticket(client, "My invoice shows two charges for November.")[:70], "...", file=out
        )
        print("  answer: ", answer_question(client, "How do I export my data?")[:70], "...", file=out)
    with track_context(user=AiEventUser("cust-007", name="Tiny Shop", monthly_revenue=9.0), session_id="sess-2"):
        for question in ("Where is my invoice?", "Can I change my plan?", "Why was I charged twice?"):
            answer_question(client, question)
        print("  chat:   ", asyncio.run(chat(async_client, "Say hello to Acme."))[:70], "...", file=out)
        broken_call(client, out)


def run_demo(db: Path, *, out: IO[str], clients: tuple[Any, Any] | None = None) -> FakeAnthropicAPI | None:
    """Record the app's calls in the store at ``db``; returns the fake it talked to (``None`` with ``clients``).

    Raises:
        RuntimeError: Some events could not be written to the store in time.
    """
    init(db_path=db)
    fake = None
    try:
        if clients is None:
            fake = make_fake()
            clients = (fake.client(), fake.async_client())
            print("Talking to the in-process fake API.\n", file=out)
        else:
            print("Talking to the real Anthropic API.\n", file=out)
        run_app(*clients, out)
        if not flush(timeout_s=10):
            msg = f"some events could not be written to {str(db)!r} in time"
            raise RuntimeError(msg)
    finally:
        shutdown(timeout_s=10)
    return fake


def reconcile_demo(fake: FakeAnthropicAPI, db: Path, *, out: IO[str], err: IO[str] | None = None) -> int:
    """``fluxgate reconcile --by model --save`` against the fake's Admin API reports; returns its exit status."""
    print("\nCompared with Anthropic's usage and cost reports (the fake's Admin API):\n", file=out)
    with serve_admin_api(fake.answered_calls, fake.untracked_usage, admin_key=_DEMO_ADMIN_KEY) as url:
        environ = {"ANTHROPIC_ADMIN_KEY": _DEMO_ADMIN_KEY, "ANTHROPIC_BASE_URL": url}
        return reconcile_main(["--db", str(db), "--by", "model", "--save"], out=out, err=err, environ=environ)


def _parser() -> _Parser:
    parser = _Parser(
        prog="fluxgate demo",
        description="Fill a store from fluxgate's offline fake of the Anthropic API, then report on it "
        "and reconcile it with the fake's usage and cost reports.",
    )
    parser.add_argument("--db", help=_db_help())
    parser.add_argument("--html", type=Path, metavar="PATH", help="also write the HTML report to PATH")
    return parser


def _stored(db: Path) -> int:
    """How many events the store at ``db`` holds: 0 when there is no store yet, -1 when it is not a store."""
    from .._report import NoStoreError, ReportError, connect

    try:
        conn = connect(db)
    except NoStoreError:
        return 0
    except ReportError:
        return -1
    try:
        return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    finally:
        conn.close()


def main(argv: Sequence[str], *, out: IO[str] | None = None) -> int:
    """Run ``fluxgate demo``; returns the exit status."""
    stream = sys.stdout if out is None else out
    try:
        args = _parser().parse_args(list(argv))
    except _ExitError as exc:
        return exc.status
    from .._report import format_count
    from .._store import describe_store, resolve_store
    from .report import main as report_main

    found = resolve_store(args.db)
    if isinstance(found, str):
        print(
            f"fluxgate demo: {describe_store(found)} is a database; the demo records made-up calls into a SQLite "
            "file of its own: fluxgate demo --db demo.db",
            file=sys.stderr,
        )
        return 2
    db = found
    held = _stored(db)
    if held:
        # The demo's calls are made up: never mix them into a store that holds real ones.
        what = f"already holds {format_count(held, 'event')}" if held > 0 else "is not an empty fluxgate store"
        print(
            f"fluxgate demo: {str(db)!r} {what}; the demo records made-up calls, so give it a store of its own: "
            "fluxgate demo --db demo.db",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        fake = run_demo(db, out=stream)
    except RuntimeError as exc:
        print(f"fluxgate demo: {exc}", file=sys.stderr)
        return 1
    print(file=stream)
    status = report_main(["--db", str(db), "--by", "feature,step"], out=stream)
    if status == 0 and fake is not None:
        status = reconcile_demo(fake, db, out=stream)
    if status == 0 and args.html is not None:
        print(file=stream)
        status = report_main(["--db", str(db), "--html", str(args.html)], out=stream)
    if args.db is None:
        print(
            f"\nThe demo's made-up calls are in {str(db)!r}: delete it (and {saved_path(db).name}) before an "
            "application records real calls there, or give the demo a store of its own with --db.",
            file=stream,
        )
    return status
