"""Email benchmark: a 10,000-recipient step rendered and accepted by a local SMTP server.

    .venv/bin/python bench/email.py [--recipients 10000] [--workers 1,2]

On PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/switchyard_bench,
created and migrated when missing); the contact and email tables are emptied first.

The SMTP server is aiosmtpd on 127.0.0.1 in a process of its own that counts what it accepts.
Each round schedules one marketing email per contact (a realistic template: a <style> block,
a logo, properties and event values, an HTML-made text part, List-Unsubscribe headers), then
times the engine sending them all: workers are `run_due` processes, started before the clock
runs and told to go together; the time runs from the go to the last send accepted.

In the same run it measures the ceiling: the same messages, rendered beforehand (the rendering
is timed too, as "render only"), sent with a bare smtplib loop over one connection. The target
is the engine at half the ceiling or better, and at least 300 emails a second.
The figures are printed; nothing is asserted.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, and this file would stand in for
# the standard library's `email` package: take the folder off before anything imports it.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import os  # noqa: E402
import smtplib  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import ROOT, Report, bench_env, counting_smtp_server, free_port, machine_line, setup_django, truncate  # noqa: E402

HTML = """<style>
  h1 { font-size: 22px; color: #111827; margin: 0 0 16px; }
  p { margin: 0 0 12px; color: #374151; }
  .cta { display: inline-block; background: #2563eb; color: #ffffff; padding: 10px 18px; border-radius: 6px;
         text-decoration: none; font-weight: 600; }
  .muted { color: #6b7280; font-size: 13px; }
  td.label { color: #6b7280; padding-right: 12px; }
</style>
<h1>Welcome aboard, {{ contact.first_name|default:"friend" }}!</h1>
<p>Thanks for signing up for the <strong>{{ contact.properties.plan }}</strong> plan. Your favourite colour is
{{ contact.properties.favoriteColor }}, so we picked a theme to match.</p>
<table>
  <tr><td class="label">Order</td><td>{{ event.properties.order_id }}</td></tr>
  <tr><td class="label">Total</td><td>{{ event.properties.total }} {{ event.properties.currency }}</td></tr>
  <tr><td class="label">Items</td><td>{{ event.properties.items }}</td></tr>
</table>
<p>Here are three things to try this week:</p>
<ul>
  <li>Connect your first source and watch events arrive in the inbox.</li>
  <li>Build a loop that greets new sign-ups, like this one.</li>
  <li>Invite your team: every admin page has the actions they need.</li>
</ul>
<p><a class="cta" href="https://example.com/start?u={{ contact.user_id|urlencode }}">Open your dashboard</a></p>
<p class="muted">You are receiving this because {{ contact.email }} signed up on {{ event.timestamp|date:"F j" }}.</p>
"""


# --- the SMTP server, in its own process ---------------------------------------------------------
def wait_for(accepted, count: int, processes=(), timeout: float = 600) -> float:
    """When the server has accepted `count` in all (or the workers are gone, or time is up)."""
    deadline = time.monotonic() + timeout
    while accepted.value < count and time.monotonic() < deadline:
        if processes and all(process.poll() is not None for process in processes):
            break
        time.sleep(0.002)
    return time.perf_counter()


# --- data ------------------------------------------------------------------------------------
def prepare(recipients: int, port: int):
    """Fresh contacts and a template; the email settings pointed at the server."""
    from django.conf import settings

    from campaigns.email.models import EmailEvent, EmailRateWindow, EmailSend, EmailTemplate
    from campaigns.email.services import email_template_save
    from common.workqueue.models import Attempt
    from contacts.models import Contact, Suppression

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", port, False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_RATE_LIMIT, settings.EMAIL_DAILY_CAP_PER_CONTACT = "", 0
    truncate(EmailEvent, EmailSend, EmailRateWindow, EmailTemplate, Attempt, Suppression, Contact)
    plans, colours = ["starter", "pro", "team"], ["teal", "amber", "violet", "red"]
    Contact.objects.bulk_create(
        [
            Contact(
                email=f"reader{n}@example.com",
                user_id=f"bench-{n}",
                first_name=f"Reader{n}",
                last_name="Bench",
                properties={"plan": plans[n % 3], "favoriteColor": colours[n % 4], "seats": n % 50},
            )
            for n in range(recipients)
        ],
        batch_size=2000,
    )
    return email_template_save(
        name="bench welcome",
        subject="Welcome, {{ contact.first_name }}: your {{ contact.properties.plan }} plan is ready",
        html=HTML,
        text="",
        transactional=False,
        logo_url="https://example.com/logo.png",
    )


def schedule_step(template, step: int) -> float:
    """One send per contact, as a loop step does; seconds it took."""
    from campaigns.email.models import EmailSend
    from campaigns.email.services import email_sends_schedule_many
    from common import clock
    from contacts.models import Contact

    EmailSend.objects.all().delete()
    now = clock.now()
    started = time.perf_counter()
    email_sends_schedule_many(
        sends=(
            {
                "contact": contact,
                "template": template,
                "purpose": "loop",
                "due_at": now,
                "key": f"bench:{step}:{contact.pk}",
                "event": {
                    "name": "Signed Up",
                    "properties": {"order_id": f"o-{contact.pk}", "total": 49.5, "currency": "USD", "items": 3},
                    "timestamp": now,
                },
            }
            for contact in Contact.objects.order_by("pk").iterator(chunk_size=2000)
        )
    )
    return time.perf_counter() - started


# --- a worker process ------------------------------------------------------------------------
def child(port: int) -> None:
    setup_django()
    from django.conf import settings

    from campaigns.email import rules
    from common.workqueue import run_due

    # The engine alone: the due-time checks callers register (loops: enrolment still active,
    # still on the list) are theirs to measure.
    rules._checks.clear()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", port, False
    print("ready", flush=True)
    sys.stdin.readline()
    cpu = time.process_time()
    totals: dict[str, float] = {}
    while True:
        counts = run_due(types=["email_send"], max_seconds=300)["email_send"]
        for key, value in counts.items():
            totals[key] = totals.get(key, 0) + value
        if not any(counts.values()):
            break
    totals["cpu_seconds"] = time.process_time() - cpu
    print(json.dumps(totals), flush=True)


def cpu_seconds(pid: int) -> float:
    """User and system CPU a process has used (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def engine_round(workers: int, port: int, accepted, recipients: int) -> tuple[float, dict]:
    env = {**bench_env(), "PYTHONUNBUFFERED": "1"}
    processes = [
        subprocess.Popen(
            [sys.executable, __file__, "--child", str(port)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(workers)
    ]
    for process in processes:
        assert process.stdout.readline().strip() == "ready"
    before = accepted.value
    started = time.perf_counter()
    for process in processes:
        process.stdin.write("go\n")
        process.stdin.flush()
    finished = wait_for(accepted, before + recipients, processes)
    totals: dict[str, float] = {}
    for process in processes:
        for key, value in json.loads(process.stdout.readline()).items():
            totals[key] = totals.get(key, 0) + value
        process.wait()
    return finished - started, totals


def ceiling_round(port: int, accepted) -> tuple[float, float, int, float]:
    """The same sends rendered beforehand (timed: render only), then a bare smtplib loop."""
    from campaigns.email.models import EmailSend
    from campaigns.email.sending import build_message
    from contacts.models import Contact

    sends = list(EmailSend.objects.select_related("template").order_by("pk"))
    contacts = Contact.objects.in_bulk([send.contact_id for send in sends])
    started = time.perf_counter()
    prepared = []
    for send in sends:
        message = build_message(send, send.template, contacts[send.contact_id])
        prepared.append((message.from_email, [send.to], message.message().as_bytes(linesep="\r\n")))
    rendering = time.perf_counter() - started
    size = sum(len(data) for _, _, data in prepared) // max(len(prepared), 1)
    before = accepted.value
    started, cpu = time.perf_counter(), time.process_time()
    server = smtplib.SMTP("127.0.0.1", port)
    for sender, to, data in prepared:
        server.sendmail(sender, to, data)
    server.quit()
    finished = wait_for(accepted, before + len(prepared))
    return finished - started, rendering, size, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--workers", default="1,2", help="worker processes per round, e.g. 1,2")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return

    setup_django()
    from django.db import connection

    from campaigns.email.models import EmailSend, SendStatus

    port = free_port()
    context = multiprocessing.get_context("spawn")
    accepted, ready = context.Value("q", 0), context.Event()
    connection.close()
    server = context.Process(target=counting_smtp_server, args=(port, accepted, ready), daemon=True)
    server.start()
    ready.wait(30)

    report = Report(f"Email: a {args.recipients:,}-recipient step through a local SMTP server")
    template = prepare(args.recipients, port)
    n = args.recipients
    rates: dict[int, float] = {}
    for step, workers in enumerate(int(w) for w in args.workers.split(",")):
        scheduling = schedule_step(template, step)
        if step == 0:
            report.add("scheduled (email_sends_schedule_many)", f"{n / scheduling:,.0f} sends/s")
        server_cpu = cpu_seconds(server.pid)
        seconds, totals = engine_round(workers, port, accepted, n)
        server_cpu = cpu_seconds(server.pid) - server_cpu
        sent = EmailSend.objects.filter(status=SendStatus.SENT).count()
        rates[workers] = n / seconds
        worker_cpu = totals.pop("cpu_seconds", 0.0)
        report.add(
            f"engine, {workers} worker process{'es' if workers > 1 else ''}",
            f"{rates[workers]:,.0f} emails/s",
            detail=f"{seconds:.1f} s; {sent:,} sent; counts {totals}; CPU per email: workers "
            f"{worker_cpu / n * 1000:.2f} ms, SMTP server {server_cpu / n * 1000:.2f} ms",
        )
        if step == 0:
            report.add(
                "engine CPU per email (worker: claim, rules, render, send, finish)",
                f"{worker_cpu / n * 1000:.2f} ms",
                detail=f"{n / worker_cpu:,.0f} emails per worker CPU-second",
            )
    server_cpu = cpu_seconds(server.pid)
    seconds, rendering, size, client_cpu = ceiling_round(port, accepted)
    server_cpu = cpu_seconds(server.pid) - server_cpu
    ceiling = n / seconds
    report.add("render only (template, CSS inline, text part, MIME)", f"{n / rendering:,.0f} emails/s")
    report.add(
        "ceiling: pre-rendered, bare smtplib, one connection",
        f"{ceiling:,.0f} emails/s",
        detail=f"{size:,} bytes each; CPU per email: client {client_cpu / n * 1000:.2f} ms, "
        f"SMTP server {server_cpu / n * 1000:.2f} ms",
    )
    best_workers = max(rates, key=rates.get)
    best = rates[best_workers]
    label = f"engine ({best_workers} worker{'s' if best_workers > 1 else ''})"
    report.add(f"{label} / ceiling", f"{best / ceiling:.0%}", "at least 50%", best / ceiling >= 0.5)
    report.add(label, f"{best:,.0f} emails/s", "at least 300/s", best >= 300)
    server.terminate()
    report.print(machine_line())


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    main()
