"""The quality benchmark's fixture repositories, generated on the spot.

Each fixture is a small application written the way such code is usually written, with
*planted facts* of the kinds the offline engine knows (``agent.facts.FactKind``) in the files
of one page, and distractors: other pages with facts of their own, which a suggestion about
this page must never cite, and plain files (configuration, helpers, a router). A planted fact
is found by a needle, a piece of text that occurs once in its file, so that its lines are
computed rather than counted by hand and stay right when a template is edited.

Fixtures:

- ``nextjs``: a Next.js (TSX, app router) shop and its Orders page;
- ``react``: a Vite + React Router (JSX) ledger and its Invoices page;
- ``django``: a Django project and its billing app (the Billing page);
- ``fastapi``: a FastAPI service and its reports router;
- ``buried``: a Next.js monorepo whose Shipments page lies among ``scale`` generated files.
"""

from __future__ import annotations

import subprocess
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from feature_planner.agent.facts import FactKind

__all__ = ["FIXTURES", "Fixture", "Plant", "PlantedFact", "build"]


@dataclass(frozen=True, slots=True)
class Plant:
    """A fact as a template states it: its kind, its file, and a needle (text occurring once
    in the file) on its first line; ``until`` (the first occurrence after it) on its last."""

    kind: FactKind
    path: str
    needle: str
    what: str
    until: str | None = None


@dataclass(frozen=True, slots=True)
class PlantedFact:
    """A planted fact and where it is: ``path``, lines ``start`` to ``end`` (from 1)."""

    kind: FactKind
    path: str
    start: int
    end: int
    what: str

    def overlaps(self, path: str, start: int, end: int) -> bool:
        return path == self.path and start <= self.end and self.start <= end

    def where(self) -> str:
        lines = f"{self.start}" if self.start == self.end else f"{self.start}-{self.end}"
        return f"{self.path}:{lines}"


@dataclass(frozen=True, slots=True)
class Spec:
    """A fixture before it is written. ``page``, ``distractors`` and ``lookalikes`` are
    paths, or folders when they end with ``/``: the page's own files; other pages; other
    pages whose files are named with the page's word (the account page's ``RecentOrders``
    for the Orders page), which a search by name takes for the page's. ``docs`` are the
    project's rule documents (CLAUDE.md…), which a suggestion may cite beside the page's."""

    name: str
    target: str  # what the user names: ``pageOrComponent``
    route: str  # the page's route file
    page: tuple[str, ...]
    distractors: tuple[str, ...]
    plants: tuple[Plant, ...]
    files: Callable[[int], Iterator[tuple[str, str]]]
    lookalikes: tuple[str, ...] = ()
    docs: tuple[str, ...] = ("CLAUDE.md", "CONTRIBUTING.md")
    scaled: bool = False  # ``files`` takes the number of filler files


@dataclass(frozen=True, slots=True)
class Fixture:
    """A fixture written to disk, its facts located."""

    name: str
    target: str
    root: Path
    route: str
    page: tuple[str, ...]
    distractors: tuple[str, ...]
    lookalikes: tuple[str, ...]
    docs: tuple[str, ...]
    facts: tuple[PlantedFact, ...]
    files: int
    generate_s: float
    git: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    def is_page(self, path: str) -> bool:
        return _under(path, self.page)

    def is_distractor(self, path: str) -> bool:
        return _under(path, self.distractors)

    def is_lookalike(self, path: str) -> bool:
        return _under(path, self.lookalikes)

    def is_doc(self, path: str) -> bool:
        return path in self.docs


def _under(path: str, places: tuple[str, ...]) -> bool:
    return any(path == p or (p.endswith("/") and path.startswith(p)) for p in places)


def _code(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


# -- nextjs: a shop's Orders page ---------------------------------------------------------

_NEXT_FILES = {
    "CLAUDE.md": """
        # Acme Shop

        ## Rules

        - Use server components for data fetching.
        - Every component must have a test file beside it.
        """,
    "README.md": """
        # Acme Shop

        The storefront and back office of Acme, built with Next.js and Tailwind CSS.
        """,
    "package.json": """
        {"name": "acme-shop", "private": true,
         "dependencies": {"next": "14.2.3", "react": "18.3.1", "react-dom": "18.3.1"}}
        """,
    "tsconfig.json": """
        {"compilerOptions": {"strict": true, "jsx": "preserve", "paths": {"@/*": ["./*"]}}}
        """,
    "next.config.js": """
        /** @type {import('next').NextConfig} */
        module.exports = { reactStrictMode: true }
        """,
    "app/layout.tsx": """
        import './globals.css'

        export default function RootLayout({ children }: { children: React.ReactNode }) {
          return (
            <html lang="en">
              <body>{children}</body>
            </html>
          )
        }
        """,
    "app/globals.css": """
        @tailwind base;
        @tailwind components;
        @tailwind utilities;
        """,
    "app/orders/page.tsx": """
        import { OrderTable } from '@/components/orders/OrderTable'
        import { OrderFilters } from '@/components/orders/OrderFilters'
        import { listOrders } from '@/lib/orders'

        // TODO: let staff export the filtered orders as CSV
        export default async function OrdersPage() {
          const orders = await listOrders()
          return (
            <main className="space-y-6 p-6">
              <h1 className="text-2xl font-semibold">Orders</h1>
              <OrderFilters />
              <OrderTable orders={orders} />
              <ul className="text-sm text-gray-500">
                {orders.map((order) => (
                  <li key={order.id}>{order.number}</li>
                ))}
              </ul>
            </main>
          )
        }
        """,
    "lib/orders.ts": """
        export type Order = { id: string; number: string; total: number; status: string }

        export async function listOrders(): Promise<Order[]> {
          const res = await fetch('https://api.acme.test/orders', { cache: 'no-store' })
          if (!res.ok) throw new Error(`orders: ${res.status}`)
          return res.json()
        }

        export async function cancelOrder(id: string): Promise<void> {
          await fetch(`https://api.acme.test/orders/${id}/cancel`, { method: 'POST' })
        }
        """,
    "components/orders/OrderTable.tsx": """
        import type { Order } from '@/lib/orders'

        export function OrderTable({ orders }: { orders: Order[] }) {
          // FIXME: totals are shown without their currency
          return (
            <div className="grid grid-cols-5 gap-2 text-sm">
              {orders.map((order) => (
                <div key={order.id}>{order.total}</div>
              ))}
            </div>
          )
        }
        """,
    "components/orders/OrderTable.test.tsx": """
        import { render, screen } from '@testing-library/react'
        import { OrderTable } from './OrderTable'

        test('shows each order', () => {
          render(<OrderTable orders={[{ id: '1', number: 'A-1', total: 3, status: 'paid' }]} />)
          expect(screen.getByText('3')).toBeTruthy()
        })
        """,
    "components/orders/OrderFilters.tsx": """
        'use client'

        import { useState } from 'react'

        export function OrderFilters() {
          const [query, setQuery] = useState('')
          return (
            <form role="search" className="flex gap-2">
              <input
                value={query}
                onChange={(e) => setQuery(e.target.value)}
                placeholder="Order number"
              />
              <label htmlFor="status">Status</label>
              <select id="status" name="status">
                <option>all</option>
                <option>open</option>
              </select>
            </form>
          )
        }
        """,
    # another page, with facts of its own
    "app/products/page.tsx": """
        import { ProductGrid } from '@/components/products/ProductGrid'

        // TODO: add a compare view for products
        export default async function ProductsPage() {
          const res = await fetch('https://api.acme.test/products')
          const products = await res.json()
          return <ProductGrid products={products} />
        }
        """,
    "components/products/ProductGrid.tsx": """
        export function ProductGrid({ products }: { products: { id: string; name: string }[] }) {
          // TODO: lazy-load the product images
          return (
            <section className="grid grid-cols-3 gap-4">
              <input type="search" placeholder="Filter products" />
              {products.map((p) => <article key={p.id}>{p.name}</article>)}
            </section>
          )
        }
        """,
    # the account page shows a customer's recent orders: about orders, not the Orders page
    "app/account/page.tsx": """
        import { RecentOrders } from '@/components/account/RecentOrders'

        export default function AccountPage() {
          return (
            <main>
              <h1>Your account</h1>
              <RecentOrders />
            </main>
          )
        }
        """,
    "components/account/RecentOrders.tsx": """
        'use client'

        import { useEffect, useState } from 'react'

        export function RecentOrders() {
          const [orders, setOrders] = useState<{ id: string; number: string }[]>([])
          useEffect(() => {
            fetch('/api/me/orders').then((r) => r.json()).then(setOrders)
          }, [])
          // TODO: link each recent order to its invoice
          return (
            <ol className="grid grid-cols-2">
              {orders.map((o) => <li key={o.id}>{o.number}</li>)}
            </ol>
          )
        }
        """,
    # plain files
    "lib/format.ts": """
        // TODO: use Intl.NumberFormat with the shop's locale
        export function money(cents: number): string {
          return `$${(cents / 100).toFixed(2)}`
        }
        """,
    "components/ui/Button.tsx": """
        export function Button(props: React.ButtonHTMLAttributes<HTMLButtonElement>) {
          return <button className="rounded bg-black px-3 py-1 text-white" {...props} />
        }
        """,
}

_NEXT = Spec(
    name="nextjs",
    target="Orders page",
    route="app/orders/page.tsx",
    page=("app/orders/", "components/orders/", "lib/orders.ts"),
    distractors=("app/products/", "components/products/"),
    lookalikes=("app/account/", "components/account/"),
    plants=(
        Plant(FactKind.TODO, "app/orders/page.tsx", "TODO: let staff export", "a TODO"),
        Plant(
            FactKind.MISSING_ROUTE_STATE,
            "app/orders/page.tsx",
            "export default async function OrdersPage",
            "no loading.tsx or error.tsx",
        ),
        Plant(
            FactKind.UNPAGED_LIST,
            "app/orders/page.tsx",
            "orders.map((order)",
            "listOrders() loads every order, rendered with .map",
        ),
        Plant(
            FactKind.UNCHECKED_FETCH,
            "lib/orders.ts",
            "await fetch(`https://api.acme.test/orders/${id}/cancel`",
            "cancelOrder never checks the response",
        ),
        Plant(FactKind.TODO, "components/orders/OrderTable.tsx", "FIXME: totals", "a FIXME"),
        Plant(FactKind.FIXED_GRID, "components/orders/OrderTable.tsx", "grid-cols-5", "grid"),
        Plant(
            FactKind.UNLABELLED_INPUT,
            "components/orders/OrderFilters.tsx",
            "<input",
            "the query input has only a placeholder",
        ),
        Plant(
            FactKind.UNTESTED_COMPONENT,
            "components/orders/OrderFilters.tsx",
            "export function OrderFilters",
            "no OrderFilters.test.tsx, which CLAUDE.md requires",
        ),
    ),
    files=lambda _: ((path, _code(text)) for path, text in _NEXT_FILES.items()),
)


# -- react: a ledger's Invoices page (Vite, React Router, plain JS) -----------------------

_REACT_FILES = {
    "CONTRIBUTING.md": """
        # Contributing

        ## Tests

        Each component needs a test file next to it (Component.test.jsx), run by Vitest.
        """,
    "README.md": """
        # Ledger

        A small invoicing app written in React with Vite and React Router.
        """,
    "package.json": """
        {"name": "ledger", "private": true, "type": "module",
         "dependencies": {"react": "18.3.1", "react-dom": "18.3.1", "react-router-dom": "6.23.1"}}
        """,
    "vite.config.js": """
        import { defineConfig } from 'vite'
        import react from '@vitejs/plugin-react'

        export default defineConfig({ plugins: [react()] })
        """,
    "src/main.jsx": """
        import React from 'react'
        import ReactDOM from 'react-dom/client'
        import { BrowserRouter } from 'react-router-dom'
        import App from './App'

        ReactDOM.createRoot(document.getElementById('root')).render(
          <BrowserRouter>
            <App />
          </BrowserRouter>,
        )
        """,
    "src/App.jsx": """
        import { Route, Routes } from 'react-router-dom'
        import InvoicesPage from './pages/InvoicesPage'
        import SettingsPage from './pages/SettingsPage'

        // TODO: lazy-load the pages with React.lazy
        export default function App() {
          return (
            <Routes>
              <Route path="/invoices" element={<InvoicesPage />} />
              <Route path="/settings" element={<SettingsPage />} />
            </Routes>
          )
        }
        """,
    "src/pages/InvoicesPage.jsx": """
        import { useEffect, useState } from 'react'
        import { InvoiceList } from '../components/InvoiceList'
        import { InvoiceForm } from '../components/InvoiceForm'
        import { fetchCustomers } from '../api/invoices'

        export default function InvoicesPage() {
          const [invoices, setInvoices] = useState([])
          const [customers, setCustomers] = useState([])

          useEffect(() => {
            fetch('/api/invoices')
              .then((res) => {
                if (!res.ok) throw new Error('could not load invoices')
                return res.json()
              })
              .then(setInvoices)
            fetchCustomers().then(setCustomers)
          }, [])

          // TODO: show overdue invoices first
          return (
            <div className="invoices">
              <InvoiceForm customers={customers} />
              <InvoiceList invoices={invoices} />
              <footer>
                {invoices.map((invoice) => (
                  <span key={invoice.id}>{invoice.number}</span>
                ))}
              </footer>
            </div>
          )
        }
        """,
    "src/api/invoices.js": """
        export async function fetchCustomers() {
          const response = await fetch('/api/customers')
          const body = await response.json()
          return body.customers
        }

        export async function saveInvoice(invoice) {
          const response = await fetch('/api/invoices', {
            method: 'POST',
            body: JSON.stringify(invoice),
          })
          return response.json()
        }
        """,
    "src/components/InvoiceList.jsx": """
        export function InvoiceList({ invoices }) {
          return (
            <section style={{ display: 'grid', gridTemplateColumns: 'repeat(4, 1fr)', gap: 12 }}>
              {invoices.map((invoice) => (
                <article key={invoice.id}>
                  <h3>{invoice.number}</h3>
                  <p>{invoice.total}</p>
                </article>
              ))}
            </section>
          )
        }
        """,
    "src/components/InvoiceList.test.jsx": """
        import { render, screen } from '@testing-library/react'
        import { InvoiceList } from './InvoiceList'

        test('lists invoices', () => {
          render(<InvoiceList invoices={[{ id: 1, number: 'INV-1', total: 10 }]} />)
          expect(screen.getByText('INV-1')).toBeTruthy()
        })
        """,
    "src/components/InvoiceForm.jsx": """
        export function InvoiceForm({ customers }) {
          // FIXME: the due date defaults to today
          return (
            <form>
              <select name="customer">
                {customers.map((customer) => (
                  <option key={customer.id}>{customer.name}</option>
                ))}
              </select>
              <textarea name="notes" rows={3} />
              <button type="submit">Create invoice</button>
            </form>
          )
        }
        """,
    # another page
    "src/pages/SettingsPage.jsx": """
        import { ProfileCard } from '../components/ProfileCard'

        // TODO: let users change their password here
        export default function SettingsPage() {
          async function save(event) {
            event.preventDefault()
            await fetch('/api/settings', { method: 'PUT' })
          }
          return (
            <form onSubmit={save}>
              <ProfileCard />
              <input name="email" placeholder="Email" />
            </form>
          )
        }
        """,
    "src/components/ProfileCard.jsx": """
        export function ProfileCard() {
          // TODO: show the avatar
          return <div className="grid grid-cols-2 gap-2">profile</div>
        }
        """,
    # plain files
    "src/utils/money.js": """
        // FIXME: rounding is off for negative amounts
        export const money = (cents) => (cents / 100).toFixed(2)
        """,
}

_REACT = Spec(
    name="react",
    target="Invoices page",
    route="src/pages/InvoicesPage.jsx",
    page=(
        "src/pages/InvoicesPage.jsx",
        "src/api/invoices.js",
        "src/components/InvoiceList.jsx",
        "src/components/InvoiceList.test.jsx",
        "src/components/InvoiceForm.jsx",
    ),
    distractors=("src/pages/SettingsPage.jsx", "src/components/ProfileCard.jsx"),
    plants=(
        Plant(FactKind.TODO, "src/pages/InvoicesPage.jsx", "TODO: show overdue", "a TODO"),
        Plant(
            FactKind.UNTESTED_COMPONENT,
            "src/pages/InvoicesPage.jsx",
            "export default function InvoicesPage",
            "the page component has no InvoicesPage.test.jsx either",
        ),
        Plant(
            FactKind.UNPAGED_LIST,
            "src/pages/InvoicesPage.jsx",
            "invoices.map((invoice)",
            "every invoice fetched into state and rendered",
        ),
        Plant(
            FactKind.UNCHECKED_FETCH,
            "src/api/invoices.js",
            "await fetch('/api/customers')",
            "fetchCustomers never checks the response",
        ),
        Plant(
            FactKind.UNCHECKED_FETCH,
            "src/api/invoices.js",
            "await fetch('/api/invoices', {",
            "saveInvoice never checks the response",
        ),
        Plant(
            FactKind.FIXED_GRID,
            "src/components/InvoiceList.jsx",
            "gridTemplateColumns: 'repeat(4, 1fr)'",
            "a four-column grid in an inline style",
        ),
        Plant(FactKind.TODO, "src/components/InvoiceForm.jsx", "FIXME: the due date", "a FIXME"),
        Plant(
            FactKind.UNLABELLED_INPUT,
            "src/components/InvoiceForm.jsx",
            '<select name="customer">',
            "a select and a textarea without labels",
            until="<textarea",
        ),
        Plant(
            FactKind.UNTESTED_COMPONENT,
            "src/components/InvoiceForm.jsx",
            "export function InvoiceForm",
            "no InvoiceForm.test.jsx, which CONTRIBUTING.md requires",
        ),
    ),
    files=lambda _: ((path, _code(text)) for path, text in _REACT_FILES.items()),
)


# -- django: the billing app --------------------------------------------------------------

_DJANGO_FILES = {
    "README.md": """
        # Shopdesk

        The back office of the shop, a Django project with PostgreSQL.
        """,
    "pyproject.toml": """
        [project]
        name = "shopdesk"
        version = "0.1.0"
        dependencies = ["django>=5.0", "requests>=2.31"]
        """,
    "manage.py": """
        import os
        import sys

        if __name__ == "__main__":
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shopdesk.settings")
            from django.core.management import execute_from_command_line

            execute_from_command_line(sys.argv)
        """,
    "shopdesk/__init__.py": "",
    "shopdesk/settings.py": """
        INSTALLED_APPS = ["django.contrib.auth", "billing", "accounts"]
        ROOT_URLCONF = "shopdesk.urls"
        """,
    "shopdesk/urls.py": """
        from django.urls import include, path

        urlpatterns = [
            path("billing/", include("billing.urls")),
            path("accounts/", include("accounts.urls")),
        ]
        """,
    "billing/__init__.py": "",
    "billing/models.py": """
        from django.db import models


        class Invoice(models.Model):
            number = models.CharField(max_length=20)
            total = models.DecimalField(max_digits=10, decimal_places=2)
            paid = models.BooleanField(default=False)
        """,
    "billing/urls.py": """
        from django.urls import path

        from . import views

        urlpatterns = [
            path("", views.invoice_list, name="invoice-list"),
            path("<int:pk>/", views.invoice_detail, name="invoice-detail"),
        ]
        """,
    "billing/views.py": """
        from django.shortcuts import get_object_or_404, render

        from .models import Invoice
        from .services import exchange_rate


        def invoice_list(request):
            # TODO: filter the invoices by customer
            invoices = Invoice.objects.all()
            rate = exchange_rate("EUR")
            return render(request, "billing/list.html", {"invoices": invoices, "rate": rate})


        def invoice_detail(request, pk):
            invoice = get_object_or_404(Invoice, pk=pk)
            return render(request, "billing/invoice_detail.html", {"invoice": invoice})
        """,
    "billing/services.py": """
        import requests

        RATES_URL = "https://rates.example.com/latest"


        def exchange_rate(currency):
            response = requests.get(RATES_URL, params={"base": currency}, timeout=5)
            return response.json()["rate"]
        """,
    "billing/templates/billing/list.html": """
        {% extends "base.html" %}
        {% block content %}
        <form method="get">
          <input type="text" name="q" placeholder="Invoice number">
        </form>
        <ul>
          {% for invoice in invoices %}<li>{{ invoice.number }}</li>{% endfor %}
        </ul>
        {% endblock %}
        """,
    "billing/tests/__init__.py": "",
    "billing/tests/test_views.py": """
        def test_invoice_list(client):
            assert client.get("/billing/").status_code == 200
        """,
    # another app
    "accounts/__init__.py": "",
    "accounts/urls.py": """
        from django.urls import path

        from . import views

        urlpatterns = [path("", views.member_list)]
        """,
    "accounts/views.py": """
        from django.contrib.auth.models import User
        from django.shortcuts import render

        from .services import notify


        def member_list(request):
            # TODO: hide deactivated members
            rows = []
            for user in User.objects.all():
                rows.append(user.username)
            notify(len(rows))
            return render(request, "accounts/members.html", {"rows": rows})
        """,
    "accounts/services.py": """
        import httpx


        def notify(count):
            reply = httpx.post("https://hooks.example.com/members", json={"count": count})
            return reply.text
        """,
}

_DJANGO = Spec(
    name="django",
    target="Billing page",
    route="billing/views.py",
    page=("billing/",),
    distractors=("accounts/",),
    plants=(
        Plant(FactKind.TODO, "billing/views.py", "TODO: filter the invoices", "a TODO"),
        Plant(
            FactKind.UNPAGED_LIST,
            "billing/views.py",
            "Invoice.objects.all()",
            "every invoice loaded and rendered",
        ),
        Plant(
            FactKind.UNCHECKED_FETCH,
            "billing/services.py",
            "requests.get(RATES_URL",
            "the rate service's status is never checked",
        ),
        Plant(
            FactKind.UNLABELLED_INPUT,
            "billing/templates/billing/list.html",
            '<input type="text" name="q"',
            "the template's search input has only a placeholder",
        ),
    ),
    files=lambda _: ((path, _code(text)) for path, text in _DJANGO_FILES.items()),
)


# -- fastapi: the reports router ----------------------------------------------------------

_FASTAPI_FILES = {
    "README.md": """
        # Metrics API

        A FastAPI service with SQLAlchemy that serves the dashboard's reports.
        """,
    "pyproject.toml": """
        [project]
        name = "metrics-api"
        version = "0.3.0"
        dependencies = ["fastapi", "sqlalchemy>=2", "httpx"]
        """,
    "app/__init__.py": "",
    "app/main.py": """
        from fastapi import FastAPI

        from .routers import reports, users

        app = FastAPI()
        app.include_router(reports.router)
        app.include_router(users.router)
        """,
    "app/db.py": """
        from sqlalchemy import create_engine
        from sqlalchemy.orm import sessionmaker

        engine = create_engine("sqlite:///metrics.db")
        SessionLocal = sessionmaker(bind=engine)
        """,
    "app/models.py": """
        from sqlalchemy import Column, Integer, String
        from sqlalchemy.orm import declarative_base

        Base = declarative_base()


        class Report(Base):
            __tablename__ = "reports"
            id = Column(Integer, primary_key=True)
            title = Column(String)


        class User(Base):
            __tablename__ = "users"
            id = Column(Integer, primary_key=True)
            email = Column(String)
        """,
    "app/routers/__init__.py": "",
    "app/routers/reports.py": """
        import httpx
        from fastapi import APIRouter

        from ..db import SessionLocal
        from ..models import Report

        router = APIRouter(prefix="/reports")


        @router.get("/")
        def list_reports():
            with SessionLocal() as session:
                return session.query(Report).all()


        @router.post("/{report_id}/publish")
        def publish_report(report_id: int):
            # FIXME: publishing twice sends two notifications
            reply = httpx.post("https://hooks.example.com/reports", json={"id": report_id})
            return {"published": report_id, "hook": reply.text}
        """,
    "app/routers/users.py": """
        import requests
        from fastapi import APIRouter

        from ..db import SessionLocal
        from ..models import User

        router = APIRouter(prefix="/users")


        @router.get("/")
        def list_users():
            # TODO: hide the users who deleted their account
            with SessionLocal() as session:
                users = session.query(User).all()
            for user in users:
                requests.post("https://audit.example.com/seen", json={"id": user.id})
            return users
        """,
    "tests/test_reports.py": """
        def test_reports(client):
            assert client.get("/reports/").status_code == 200
        """,
}

_FASTAPI = Spec(
    name="fastapi",
    target="Reports",
    route="app/routers/reports.py",
    page=("app/routers/reports.py", "tests/test_reports.py"),
    distractors=("app/routers/users.py",),
    plants=(
        Plant(
            FactKind.UNPAGED_LIST,
            "app/routers/reports.py",
            "session.query(Report).all()",
            "every report returned",
        ),
        Plant(FactKind.TODO, "app/routers/reports.py", "FIXME: publishing twice", "a FIXME"),
        Plant(
            FactKind.UNCHECKED_FETCH,
            "app/routers/reports.py",
            "httpx.post(",
            "the hook's status is never checked",
        ),
    ),
    files=lambda _: ((path, _code(text)) for path, text in _FASTAPI_FILES.items()),
)


# -- buried: a Shipments page among generated files ---------------------------------------

_WEB = "apps/web"
_ROUTE = f"{_WEB}/app/(dashboard)/shipments/page.tsx"
_BURIED_FILES = {
    "CLAUDE.md": """
        # Fleet

        - Keep pages as server components; client code goes in components/.
        - Every component should have a test next to it.
        """,
    "README.md": """
        # Fleet

        A logistics monorepo: the Next.js dashboard in apps/web and shared packages.
        """,
    "package.json": """
        {"name": "fleet", "private": true, "workspaces": ["apps/*", "packages/*"]}
        """,
    ".gitignore": """
        node_modules/
        dist/
        .next/
        """,
    f"{_WEB}/package.json": """
        {"name": "@fleet/web", "dependencies": {"next": "14.2.3", "swr": "2.2.5"}}
        """,
    f"{_WEB}/tsconfig.json": """
        {"compilerOptions": {"paths": {"@/*": ["./*"]}}}
        """,
    f"{_WEB}/app/layout.tsx": """
        export default function RootLayout({ children }: { children: React.ReactNode }) {
          return <html lang="en"><body>{children}</body></html>
        }
        """,
    f"{_WEB}/app/(dashboard)/loading.tsx": """
        export default function Loading() {
          return <p>Loading…</p>
        }
        """,
    _ROUTE: """
        import { ShipmentBoard } from '@/components/shipments/ShipmentBoard'
        import { ShipmentSearch } from '@/components/shipments/ShipmentSearch'
        import { carrierStatus } from '@/lib/shipments'

        export default async function ShipmentsPage() {
          const carriers = await carrierStatus()
          // TODO: show the carriers' delays on a map
          return (
            <main className="p-6">
              <h1>Shipments</h1>
              <p>{carriers.length} carriers</p>
              <ShipmentSearch />
              <ShipmentBoard />
            </main>
          )
        }
        """,
    f"{_WEB}/lib/shipments.ts": """
        export async function carrierStatus(): Promise<{ name: string; delayed: boolean }[]> {
          const response = await fetch('https://carriers.fleet.test/status')
          const data = await response.json()
          return data.carriers
        }
        """,
    f"{_WEB}/components/shipments/ShipmentBoard.tsx": """
        'use client'

        import useSWR from 'swr'

        const fetcher = (url: string) => fetch(url).then((r) => r.json())

        export function ShipmentBoard() {
          const { data: shipments = [] } = useSWR('/api/shipments', fetcher)
          return (
            <div className="grid grid-cols-6 gap-3">
              {shipments.map((s: { id: string; code: string }) => (
                <div key={s.id}>{s.code}</div>
              ))}
            </div>
          )
        }
        """,
    f"{_WEB}/components/shipments/ShipmentBoard.test.tsx": """
        import { render } from '@testing-library/react'
        import { ShipmentBoard } from './ShipmentBoard'

        test('renders', () => {
          render(<ShipmentBoard />)
        })
        """,
    f"{_WEB}/components/shipments/ShipmentSearch.tsx": """
        'use client'

        export function ShipmentSearch() {
          return (
            <form action="/shipments">
              <input name="code" placeholder="Tracking code" />
            </form>
          )
        }
        """,
    # another page whose name contains the page's
    f"{_WEB}/app/(dashboard)/shipments-archive/page.tsx": """
        // TODO: move the archive to cold storage
        export default async function ShipmentsArchivePage() {
          const res = await fetch('https://api.fleet.test/archive')
          const rows = await res.json()
          return <table className="grid grid-cols-4">{rows.map((r) => <tr key={r.id} />)}</table>
        }
        """,
    # git-ignored build output: a copy of the page
    f"{_WEB}/.next/server/app/shipments/page.tsx": """
        // TODO: generated copy, never read
        export default async function ShipmentsPage() {
          return fetch('https://carriers.fleet.test/status')
        }
        """,
    "dist/shipments/page.tsx": """
        // TODO: built copy, never read
        export default function ShipmentsPage() { return null }
        """,
}
_FILLER_PER_DIR = 100
_FILLER_TSX = """\
import {{ useEffect, useState }} from 'react'

// TODO: module {n} still uses the old {topic} API
export function Widget{n}() {{
  const [rows, setRows] = useState([])
  useEffect(() => {{
    fetch('/api/{topic}/{n}').then((r) => r.json()).then(setRows)
  }}, [])
  return <ul className="grid grid-cols-3">{{rows.map((r) => <li key={{r.id}}>{{r.name}}</li>)}}</ul>
}}
"""
_FILLER_TS = """\
// helpers for the {topic} module {n}
export function format{n}(value: number): string {{
  return value.toFixed(2)
}}
"""
_FILLER_PAGE = """\
import {{ Widget{n} }} from '@/features/f{n}/Widget{n}'

// FIXME: the {topic} report {n} has no owner
export default async function Area{n}Page() {{
  const res = await fetch('/api/{topic}/{n}')
  return <section><input name="q{n}" /><Widget{n} /></section>
}}
"""
_TOPICS = ("billing", "routes", "drivers", "depots", "fleet", "tyres", "fuel", "vehicles")


def _buried_files(scale: int) -> Iterator[tuple[str, str]]:
    """The page's files, then ``scale`` filler files: components with facts of their own,
    helpers, notes, and every 500th one another route of the dashboard (a distractor)."""
    for path, text in _BURIED_FILES.items():
        yield path, _code(text)
    for n in range(scale):
        topic = _TOPICS[n % len(_TOPICS)]
        folder = f"packages/p{n // 10_000:02}/m{n // _FILLER_PER_DIR:04}"
        if n % 500 == 250:
            yield (
                f"{_WEB}/app/(dashboard)/areas/area{n}/page.tsx",
                _FILLER_PAGE.format(n=n, topic=topic),
            )
        elif n % 4 == 0:
            yield f"{folder}/Widget{n}.tsx", _FILLER_TSX.format(n=n, topic=topic)
        elif n % 4 == 3:
            yield f"{folder}/NOTES{n}.md", f"# {topic} {n}\n\nNotes on the {topic} module.\n"
        else:
            yield f"{folder}/util{n}.ts", _FILLER_TS.format(n=n, topic=topic)


_BURIED = Spec(
    name="buried",
    target="Shipments page",
    route=_ROUTE,
    page=(
        f"{_WEB}/app/(dashboard)/shipments/",
        f"{_WEB}/components/shipments/",
        f"{_WEB}/lib/shipments.ts",
    ),
    distractors=(
        f"{_WEB}/app/(dashboard)/areas/",  # every generated route: area250/, area750/…
        f"{_WEB}/.next/",
        "dist/",
    ),
    lookalikes=(f"{_WEB}/app/(dashboard)/shipments-archive/",),
    plants=(
        Plant(FactKind.TODO, _ROUTE, "TODO: show the carriers' delays", "a TODO"),
        Plant(
            FactKind.MISSING_ROUTE_STATE,
            _ROUTE,
            "export default async function ShipmentsPage",
            "no error.tsx (a loading.tsx is in the parent segment)",
        ),
        Plant(
            FactKind.UNCHECKED_FETCH,
            f"{_WEB}/lib/shipments.ts",
            "await fetch('https://carriers.fleet.test/status')",
            "carrierStatus never checks the response",
        ),
        Plant(
            FactKind.UNPAGED_LIST,
            f"{_WEB}/components/shipments/ShipmentBoard.tsx",
            "shipments.map(",
            "every shipment loaded with SWR and rendered",
        ),
        Plant(
            FactKind.UNCHECKED_FETCH,
            f"{_WEB}/components/shipments/ShipmentBoard.tsx",
            "const fetcher =",
            "SWR's fetcher never checks the response",
        ),
        Plant(
            FactKind.FIXED_GRID,
            f"{_WEB}/components/shipments/ShipmentBoard.tsx",
            "grid-cols-6",
            "a six-column grid",
        ),
        Plant(
            FactKind.UNLABELLED_INPUT,
            f"{_WEB}/components/shipments/ShipmentSearch.tsx",
            '<input name="code"',
            "the tracking code input has only a placeholder",
        ),
        Plant(
            FactKind.UNTESTED_COMPONENT,
            f"{_WEB}/components/shipments/ShipmentSearch.tsx",
            "export function ShipmentSearch",
            "no ShipmentSearch.test.tsx, which CLAUDE.md asks for",
        ),
    ),
    files=_buried_files,
    scaled=True,
)

FIXTURES: dict[str, Spec] = {
    spec.name: spec for spec in (_NEXT, _REACT, _DJANGO, _FASTAPI, _BURIED)
}


# -- writing them -------------------------------------------------------------------------


def build(spec: Spec, base: Path, *, scale: int = 0, git: bool = False) -> Fixture:
    """Write the fixture under ``base``/name (a fresh folder), locate its planted facts, and
    with ``git`` make it a checkout with every file added (so the scan lists it with git)."""
    started = time.perf_counter()
    root = base / spec.name
    root.mkdir(parents=True)
    texts: dict[str, str] = {}
    made: set[Path] = set()
    count = 0
    for rel, text in spec.files(scale):
        path = root / rel
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        path.write_text(text, encoding="utf-8")
        count += 1
        if any(rel == plant.path for plant in spec.plants) or rel == spec.route:
            texts[rel] = text
    if git:
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    facts = tuple(_locate(plant, texts) for plant in spec.plants)
    _no_overlap(facts)
    return Fixture(
        name=spec.name,
        target=spec.target,
        root=root,
        route=spec.route,
        page=spec.page,
        distractors=spec.distractors,
        lookalikes=spec.lookalikes,
        docs=spec.docs,
        facts=facts,
        files=count,
        generate_s=time.perf_counter() - started,
        git=git,
    )


def _locate(plant: Plant, texts: dict[str, str]) -> PlantedFact:
    lines = texts[plant.path].split("\n")
    hits = [number for number, line in enumerate(lines, start=1) if plant.needle in line]
    if len(hits) != 1:
        raise ValueError(f"{plant.path}: {plant.needle!r} occurs {len(hits)} times, not once")
    start = end = hits[0]
    if plant.until is not None:
        end = next(n for n in range(start, len(lines) + 1) if plant.until in lines[n - 1])
    return PlantedFact(plant.kind, plant.path, start, end, plant.what)


def _no_overlap(facts: tuple[PlantedFact, ...]) -> None:
    """Two facts on the same lines could not be told apart by the evidence that grounds them."""
    for i, one in enumerate(facts):
        for other in facts[i + 1 :]:
            if other.overlaps(one.path, one.start, one.end):
                raise ValueError(f"planted facts overlap: {one.where()} and {other.where()}")
