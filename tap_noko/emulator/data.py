"""Deterministic, deliberately messy Noko v2 account data.

Everything here is a pure function of the seed and the sizes, so a test can
rebuild the expected data instead of trusting what the server sends. The
records carry every v2 field listed in ``shared/noko-api.md``; blank values
are ``None`` because Noko sends ``null`` rather than omitting keys.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Any

Record = dict[str, Any]

API = "https://api.nokotime.com/v2"
APP = "https://secure.nokotime.com"

#: The account's history ends here; dates spread over the three years before.
DATA_EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
FIRST_DAY = dt.date(2023, 1, 2)
LAST_DAY = dt.date(2025, 12, 31)

FIRST_NAMES = [
    "Zoë",
    "José",
    "Ngọc Anh",
    "Seán",
    "Łukasz",
    "美咲",
    "Ana-María",
    "Björn",
    "Chloé",
    "Dmitrij",
    "Émile",
    "Fatimah",
    "Grete",
    "Hiroshi",
    "Ines",
    "Jörg",
]
LAST_NAMES = [
    "O'Brien",
    "Müller",
    "Nguyễn",
    "García Márquez",
    "Kowalski",
    "山田",
    "Øster",
    "D'Angelo",
    'Smith "Smitty"',
    "Ångström",
    "Leroy",
    "Petrović",
    None,
]
PROJECT_WORDS = [
    "Website relaunch",
    "Ünïcode audit",
    "Support retainer",
    "Café Noir",
    'ACME "Rocket" launch',
    "Q&A <internal>",
    "Data-warehouse 🚀",
    "Mobile app",
    "Brand refresh",
    "Legal / compliance",
    "Research, misc.",
    "Onboarding",
]
TAG_WORDS = [
    "meeting",
    "design",
    "dev",
    "review",
    "travel",
    "email",
    "bugfix",
    "planning",
    "réunion",
    "設計",
    "calls",
    "admin",
    "qa",
    "writing",
    "research",
    "support",
]
DESCRIPTIONS = [
    "Fixed the login bug #bugfix",
    "Weekly sync with the client\nAgreed on next steps",
    'Reviewed "final" designs — v3',
    "Café meeting about the roadmap ☕",
    "Wrote docs; tidied the README, etc.",
    "Call with 山田さん re: invoices",
    "Pair programming with Zoë 👩‍💻",
    "Backslash \\ and tab\tin one description",
    "Deployed to production <script>alert(1)</script>",
    "",
]
COLORS = ["#ff9898", "#f7c954", "#7bdd8a", "#58a4f7", "#b98af7", "#a1a1a1"]
ROLES = ["supervisor", "leader", "coworker", "contractor"]


def ts(moment: dt.datetime) -> str:
    """Noko's timestamp format: UTC, one-second resolution, ``Z`` suffix."""
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _day_time(rng: random.Random, day: dt.date, start_hour: int = 8, end_hour: int = 20) -> dt.datetime:
    seconds = rng.randrange(start_hour * 3600, end_hour * 3600)
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=seconds)


def _between(rng: random.Random, start: dt.datetime, end: dt.datetime) -> dt.datetime:
    span = max(0, int((end - start).total_seconds()))
    return start + dt.timedelta(seconds=rng.randint(0, span))


def simple_user(user: Record) -> Record:
    return {k: user[k] for k in ("id", "email", "first_name", "last_name", "profile_image_url", "url")}


def simple_project(project: Record) -> Record:
    return {k: project[k] for k in ("id", "name", "billing_increment", "enabled", "billable", "color", "url")}


def simple_tag(tag: Record) -> Record:
    return {k: tag[k] for k in ("id", "name", "billable", "formatted_name", "url")}


def simple_invoice(invoice: Record) -> Record:
    return {k: invoice[k] for k in ("id", "reference", "invoice_date", "state", "total_amount", "url")}


def simple_named(obj: Record) -> Record:
    """The simple form shared by project groups and teams."""
    return {k: obj[k] for k in ("id", "name", "url")}


@dataclass
class Account:
    """A whole generated account: every list the emulator serves."""

    users: list[Record] = field(default_factory=list)
    teams: list[Record] = field(default_factory=list)
    project_groups: list[Record] = field(default_factory=list)
    projects: list[Record] = field(default_factory=list)
    tags: list[Record] = field(default_factory=list)
    invoices: list[Record] = field(default_factory=list)
    expenses: list[Record] = field(default_factory=list)
    timers: list[Record] = field(default_factory=list)
    entries: list[Record] = field(default_factory=list)
    account: Record = field(default_factory=dict)
    current_user: Record = field(default_factory=dict)


class Generator:
    """Builds an :class:`Account`; also makes new entries for mutations."""

    def __init__(self, seed: int, *, users: int, projects: int, tags: int) -> None:
        self.rng = random.Random(seed)
        self.n_users, self.n_projects, self.n_tags = users, projects, tags
        self.next_entry_id = 1_000_000 + self.rng.randrange(1000)
        self.account = Account()

    # -- reference data -------------------------------------------------
    def build(self, entries: int) -> Account:
        rng, acc = self.rng, self.account
        created = dt.datetime(2022, 12, 1, 9, 0, tzinfo=dt.timezone.utc)
        for i in range(self.n_users):
            first = FIRST_NAMES[i % len(FIRST_NAMES)]
            last = LAST_NAMES[rng.randrange(len(LAST_NAMES))]
            uid = 100 + i * 7
            acc.users.append(
                {
                    "id": uid,
                    "email": f"user{i}@example.com",
                    "first_name": first,
                    "last_name": last,
                    "profile_image_url": f"https://example.com/avatars/{uid}.png" if i % 3 else None,
                    "url": f"{API}/users/{uid}",
                    "state": "active"
                    if i < 2
                    else rng.choice(["active", "active", "active", "disabled", "pending", "suspended"]),
                    "role": "supervisor" if i == 0 else rng.choice(ROLES),
                    "teams": [],
                    "entries": 0,
                    "entries_url": f"{API}/entries?user_ids={uid}",
                    "expenses": 0,
                    "expenses_url": f"{API}/expenses?user_ids={uid}",
                    "give_access_to_project_url": f"{API}/users/{uid}/give_access_to_project",
                    "revoke_access_to_project_url": f"{API}/users/{uid}/revoke_access_to_project",
                    "revoke_access_to_all_projects_url": f"{API}/users/{uid}/revoke_access_to_all_projects",
                    "activate_url": f"{API}/users/{uid}/activate",
                    "deactivate_url": f"{API}/users/{uid}/deactivate",
                    "created_at": ts(created + dt.timedelta(days=i)),
                    "updated_at": ts(created + dt.timedelta(days=i + rng.randrange(900))),
                }
            )
        for i, name in enumerate(["Développeurs", "Design & UX", "Back office"]):
            tid = 10 + i
            members = [u for j, u in enumerate(acc.users) if j % 3 == i]
            team = {
                "id": tid,
                "name": name,
                "url": f"{API}/teams/{tid}",
                "users": [simple_user(u) for u in members],
                "entries_url": f"{API}/entries?team_ids={tid}",
                "users_url": f"{API}/teams/{tid}/users",
                "add_users_url": f"{API}/teams/{tid}/add_users",
                "remove_users_url": f"{API}/teams/{tid}/remove_users",
                "remove_all_users_url": f"{API}/teams/{tid}/remove_all_users",
                "created_at": ts(created),
                "updated_at": ts(created + dt.timedelta(days=30 * i)),
            }
            acc.teams.append(team)
            for u in members:
                u["teams"].append(simple_named(team))
        for i, name in enumerate(["Clients ✨", "Internal", "Öffentlich"]):
            gid = 300 + i
            acc.project_groups.append(
                {
                    "id": gid,
                    "name": name,
                    "url": f"{API}/project_groups/{gid}",
                    "projects": [],
                    "entries_url": f"{API}/project_groups/{gid}/entries",
                    "invoices_url": f"{API}/project_groups/{gid}/invoices",
                    "projects_url": f"{API}/project_groups/{gid}/projects",
                    "add_projects_url": f"{API}/project_groups/{gid}/add_projects",
                    "remove_projects_url": f"{API}/project_groups/{gid}/remove_projects",
                    "remove_all_projects_url": f"{API}/project_groups/{gid}/remove_all_projects",
                    "created_at": ts(created),
                    "updated_at": ts(created + dt.timedelta(days=11 * i)),
                }
            )
        for i in range(self.n_projects):
            pid = 5000 + i * 13
            group = acc.project_groups[i % 4] if i % 4 < 3 else None
            project = {
                "id": pid,
                "name": f"{PROJECT_WORDS[i % len(PROJECT_WORDS)]}"
                + (f" {i // len(PROJECT_WORDS) + 1}" if i >= len(PROJECT_WORDS) else ""),
                "billing_increment": rng.choice([1, 5, 6, 10, 15, 30, 60]),
                "enabled": i % 6 != 5,
                "billable": i % 5 != 4,
                "color": COLORS[i % len(COLORS)],
                "url": f"{API}/projects/{pid}",
                "group": simple_named(group) if group else None,
                "minutes": 0,
                "billable_minutes": 0,
                "unbillable_minutes": 0,
                "invoiced_minutes": 0,
                "remaining_minutes": None,
                "budgeted_minutes": rng.choice([None, None, 6000, 12000, 60000]),
                "import": {"id": 70 + i, "url": f"{API}/imports/{70 + i}"} if i % 7 == 3 else None,
                "invoices": [],
                "participants": [
                    simple_user(u) for u in rng.sample(acc.users, k=min(len(acc.users), rng.randint(1, 5)))
                ],
                "entries": 0,
                "entries_url": f"{API}/entries?project_ids={pid}",
                "expenses": 0,
                "expenses_url": f"{API}/expenses?project_ids={pid}",
                "created_at": ts(created + dt.timedelta(days=i * 3)),
                "updated_at": ts(created + dt.timedelta(days=i * 3 + rng.randrange(1000))),
                "merge_url": f"{API}/projects/{pid}/merge",
                "archive_url": f"{API}/projects/{pid}/archive",
                "unarchive_url": f"{API}/projects/{pid}/unarchive",
            }
            acc.projects.append(project)
            if group:
                group["projects"].append(simple_project(project))
        for i in range(self.n_tags):
            tag_id = 800 + i * 3
            word = TAG_WORDS[i % len(TAG_WORDS)] + (str(i // len(TAG_WORDS)) if i >= len(TAG_WORDS) else "")
            billable = i % 4 != 3
            acc.tags.append(
                {
                    "id": tag_id,
                    "name": word,
                    "billable": billable,
                    "formatted_name": ("#" if billable else "*") + word,
                    "url": f"{API}/tags/{tag_id}",
                    "import": {"id": 90 + i, "url": f"{API}/imports/{90 + i}"} if i % 9 == 4 else None,
                    "entries": 0,
                    "entries_url": f"{API}/entries?tag_ids={tag_id}",
                    "merge_url": f"{API}/tags/{tag_id}/merge",
                    "created_at": ts(created + dt.timedelta(hours=i)),
                    "updated_at": ts(created + dt.timedelta(hours=i, days=rng.randrange(500))),
                }
            )
        self._build_invoices()
        self._build_entries(entries)
        self._build_expenses()
        self._build_timers()
        owner = acc.users[0]
        acc.account = {
            "id": 42,
            "name": "Café Ünïcode & Söhne Ltd.",
            "invoicing_enabled": True,
            "owner": simple_user(owner),
            "url": f"{API}/account",
            "created_at": ts(created),
            "updated_at": ts(DATA_EPOCH - dt.timedelta(days=3)),
        }
        acc.current_user = {
            **simple_user(owner),
            "state": owner["state"],
            "role": owner["role"],
            "entries": 0,
            "entries_url": owner["entries_url"],
            "expenses": 0,
            "expenses_url": owner["expenses_url"],
            "time_format": "fraction",
            "week_start": "monday",
            "utc_offset": 3600,
            "send_personal_weekly_report_email": True,
            "send_team_weekly_report_email": False,
            "created_at": owner["created_at"],
            "updated_at": owner["updated_at"],
        }
        return acc

    def _build_invoices(self) -> None:
        rng, acc = self.rng, self.account
        for i in range(12):
            iid = 9000 + i
            day = FIRST_DAY + dt.timedelta(days=90 * i + 30)
            total = round(rng.uniform(500, 25000), 2)
            projects = rng.sample(acc.projects, k=min(2, len(acc.projects)))
            state = "paid" if i < 8 else rng.choice(["unpaid", "draft", "awaiting_payment", "in_dispute"])
            acc.invoices.append(
                {
                    "id": iid,
                    "state": state,
                    "reference": f"INV-{2023 + i // 4}-{i:03d}",
                    "invoice_date": day.isoformat(),
                    "project_name": projects[0]["name"],
                    "company_name": "Café Ünïcode & Söhne Ltd.",
                    "company_details": "1 Main Street\nSpringfield",
                    "recipient_details": "ACME Corp.\nAccounts payable",
                    "description": None if i % 3 else 'Work as agreed "in full"',
                    "footer": None,
                    "show_hours": True,
                    "show_tags": i % 2 == 0,
                    "show_project_name": True,
                    "show_user": False,
                    "show_tax_totals": True,
                    "show_dates": True,
                    "customization": {"header": None, "color": COLORS[i % len(COLORS)]},
                    "rate_calculation": {
                        "calculation_method": "standard",
                        "standard_hourly_rate": 95.0,
                        "custom_hourly_rates": [],
                        "flat_rate": None,
                    },
                    "taxes": [{"id": 1, "name": "VAT", "percentage": 20.0}] if i % 2 else [],
                    "taxable_amount": total,
                    "taxfree_amount": 0.0,
                    "tax_total_amount": round(total * 0.2, 2) if i % 2 else 0.0,
                    "total_amount": total,
                    "taxable_amount_with_currency": f"${total:,.2f}",
                    "taxfree_amount_with_currency": "$0.00",
                    "tax_total_amount_with_currency": "$0.00",
                    "total_amount_with_currency": f"${total:,.2f}",
                    "payment": {
                        "paid_at": ts(_day_time(rng, day + dt.timedelta(days=20))),
                        "reference": f"P{i}",
                        "payment_method": "bank transfer",
                    }
                    if state == "paid"
                    else None,
                    "payment_transactions": [],
                    "projects": [simple_project(p) for p in projects],
                    "entries": 0,
                    "entries_url": f"{API}/invoices/{iid}/entries",
                    "expenses": 0,
                    "expenses_url": f"{API}/invoices/{iid}/expenses",
                    "share_url": f"{APP}/invoices/share/{iid:x}",
                    "created_at": ts(_day_time(rng, day)),
                    "updated_at": ts(_day_time(rng, day + dt.timedelta(days=25))),
                    "url": f"{API}/invoices/{iid}",
                }
            )
            for p in projects:
                p["invoices"].append(simple_invoice(acc.invoices[-1]))

    def _build_entries(self, count: int) -> None:
        days = (LAST_DAY - FIRST_DAY).days + 1
        for _ in range(count):
            day = FIRST_DAY + dt.timedelta(days=self.rng.randrange(days))
            if day.weekday() >= 5 and self.rng.random() < 0.7:  # fewer entries at weekends
                day -= dt.timedelta(days=day.weekday() - 4)
            self.account.entries.append(self.new_entry(day))
        self._invoice_entries()

    def new_entry(self, day: dt.date, *, now: dt.datetime | None = None) -> Record:
        """One entry logged on ``day``; ``now`` pins created/updated (mutations)."""
        rng, acc = self.rng, self.account
        eid = self.next_entry_id
        self.next_entry_id += rng.randint(1, 9)
        user = rng.choice(acc.users)
        project = rng.choice(acc.projects) if rng.random() > 0.1 else None
        tags = rng.sample(acc.tags, k=min(len(acc.tags), rng.choice([0, 0, 1, 1, 2, 3])))
        if now is None:
            created = _day_time(rng, day) + dt.timedelta(days=rng.choice([0, 0, 0, 0, 1, 2, -1]))
            updated = created + dt.timedelta(seconds=rng.choice([0, 0, 0, 5, 60, 3600, 86400 * 3]))
            updated = min(updated, DATA_EPOCH - dt.timedelta(days=1))
            created = min(created, updated)
        else:
            created = updated = now
        approved = None
        if now is None and rng.random() < 0.35:
            approved = _between(rng, updated, min(updated + dt.timedelta(days=14), DATA_EPOCH - dt.timedelta(days=1)))
            updated = approved
        approver = rng.choice(acc.users[:3]) if approved else None
        description = rng.choice(DESCRIPTIONS)
        if tags:
            description = (description + " " + " ".join("#" + t["name"] for t in tags)).strip()
        return {
            "id": eid,
            "date": day.isoformat(),
            "user": simple_user(user),
            "billable": bool((project is None or project["billable"]) and all(t["billable"] for t in tags)),
            "minutes": rng.choice([15, 30, 45, 60, 90, 120, 240, 480]) if rng.random() < 0.9 else rng.randint(1, 600),
            "description": description or None,
            "project": simple_project(project) if project else None,
            "tags": [simple_tag(t) for t in tags],
            "source_url": f"https://github.com/acme/app/issues/{eid % 997}" if rng.random() < 0.05 else None,
            "invoiced_at": None,
            "invoice": None,
            "import": {"id": 77, "url": f"{API}/imports/77"} if rng.random() < 0.02 else None,
            "approved_at": ts(approved) if approved else None,
            "approved_by": simple_user(approver) if approver else None,
            "url": f"{API}/entries/{eid}",
            "invoiced_outside_of_noko_url": f"{API}/entries/{eid}/marked_as_invoiced",
            "approved_url": f"{API}/entries/{eid}/approved",
            "unapproved_url": f"{API}/entries/{eid}/unapproved",
            "created_at": ts(created),
            "updated_at": ts(updated),
        }

    def _invoice_entries(self) -> None:
        """Invoicing touches many entries in the same second, as Noko does."""
        by_project: dict[int, list[Record]] = {}
        for e in self.account.entries:
            if e["project"]:
                by_project.setdefault(e["project"]["id"], []).append(e)
        for invoice in self.account.invoices:
            invoiced_at = dt.datetime.fromisoformat(invoice["invoice_date"]).replace(tzinfo=dt.timezone.utc)
            invoiced_at += dt.timedelta(hours=15, minutes=invoice["id"] % 60)
            stamp = ts(invoiced_at)
            for p in invoice["projects"]:
                batch = [
                    e
                    for e in by_project.get(p["id"], [])
                    if e["invoice"] is None and e["date"] < invoice["invoice_date"]
                ]
                for e in batch[:150]:
                    e["invoice"] = simple_invoice(invoice)
                    e["invoiced_at"] = stamp
                    if e["updated_at"] < stamp:
                        e["updated_at"] = stamp

    def _build_expenses(self) -> None:
        rng, acc = self.rng, self.account
        for i in range(40):
            xid = 20000 + i
            day = FIRST_DAY + dt.timedelta(days=rng.randrange((LAST_DAY - FIRST_DAY).days))
            project = rng.choice(acc.projects)
            invoice = rng.choice(acc.invoices) if i % 5 == 0 else None
            created = _day_time(rng, day)
            acc.expenses.append(
                {
                    "id": xid,
                    "price": round(rng.uniform(3, 900), 2),
                    "description": rng.choice(["Train ticket 🚆", 'Hotel "Le Grand"', "Software licence", None]),
                    "taxable": i % 2 == 0,
                    "date": day.isoformat(),
                    "project": simple_project(project),
                    "invoice": simple_invoice(invoice) if invoice else None,
                    "user": simple_user(rng.choice(acc.users)),
                    "url": f"{API}/expenses/{xid}",
                    "created_at": ts(created),
                    "updated_at": ts(created + dt.timedelta(days=rng.randrange(5))),
                }
            )

    def _build_timers(self) -> None:
        rng, acc = self.rng, self.account
        for i, state in enumerate(["running", "paused", "paused"]):
            tid = 600 + i
            seconds = rng.randrange(60, 20000)
            project = acc.projects[i % len(acc.projects)]
            acc.timers.append(
                {
                    "id": tid,
                    "state": state,
                    "seconds": seconds,
                    "formatted_time": f"{seconds // 3600}:{seconds % 3600 // 60:02d}",
                    "date": LAST_DAY.isoformat(),
                    "description": None if i == 2 else "Timer für Ärger #dev",
                    "user": simple_user(acc.users[0]),
                    "project": simple_project(project),
                    "url": f"{API}/projects/{project['id']}/timer",
                    "start_url": f"{API}/projects/{project['id']}/timer/start",
                    "pause_url": f"{API}/projects/{project['id']}/timer/pause",
                    "add_or_subtract_time_url": f"{API}/projects/{project['id']}/timer/add_or_subtract_time",
                    "log_url": f"{API}/projects/{project['id']}/timer/log",
                }
            )


def generate(
    seed: int = 1, *, entries: int = 2000, users: int = 12, projects: int = 25, tags: int = 40
) -> tuple[Account, Generator]:
    """Build an account; the generator is returned to make more entries later."""
    gen = Generator(seed, users=users, projects=projects, tags=tags)
    return gen.build(entries), gen
