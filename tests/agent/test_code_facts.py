"""Facts read from syntax trees (``agent.facts``): each kind found where the code shows it,
and not where it does not, with evidence the verifier confirms."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from feature_planner.agent.evidence import verify_suggestion
from feature_planner.agent.facts import Fact, FactKind, find_facts
from feature_planner.agent.sandbox import Sandbox
from feature_planner.models import Suggestion
from tests.agent.conftest import write


def _facts(root: Path, files: dict[str, str], *own: str) -> list[Fact]:
    for rel, text in files.items():
        write(root / rel, text)
    report = find_facts(root, own or tuple(files), nearby=False)
    for fact in report.facts:
        _assert_verified(root, fact)
    return report.facts


def _assert_verified(root: Path, fact: Fact) -> None:
    suggestion = Suggestion(title="t", rationale="r", description="d", evidence=list(fact.evidence))
    check = verify_suggestion(Sandbox(root), suggestion)
    assert check.complete, (fact, [v.reason for v in check.verdicts])
    assert 1 <= len(fact.evidence) <= 5


def _kinds(facts: list[Fact]) -> list[FactKind]:
    return [fact.kind for fact in facts]


UNCHECKED = """\
export async function loadOrders() {
  const res = await fetch('/api/orders?page=1')
  return res.json()
}
"""
CHECKED = """\
export async function loadOrders() {
  const res = await fetch('/api/orders?page=1')
  if (!res.ok) throw new Error(`orders: ${res.status}`)
  return res.json()
}
export function loadMore() {
  return fetch('/api/more?page=2')
}
"""


def test_a_fetch_whose_status_is_never_checked(tmp_path: Path) -> None:
    facts = _facts(tmp_path, {"src/orders.ts": UNCHECKED})

    assert _kinds(facts) == [FactKind.UNCHECKED_FETCH]
    assert facts[0].symbol == "loadOrders"
    assert facts[0].evidence[0].start_line == 2
    assert "fetch('/api/orders?page=1')" in facts[0].evidence[0].quote


def test_a_checked_or_returned_fetch_is_not_a_fact(tmp_path: Path) -> None:
    assert _facts(tmp_path, {"src/orders.ts": CHECKED}) == []


def test_a_then_chain_without_a_check_is_a_fact(tmp_path: Path) -> None:
    code = (
        "export function go(set) {\n  fetch('/api/x?limit=5').then((r) => r.json()).then(set)\n}\n"
    )
    facts = _facts(tmp_path, {"src/go.js": code})

    assert _kinds(facts) == [FactKind.UNCHECKED_FETCH]
    assert facts[0].evidence[0].start_line == 2


LIST = """\
export default async function Products() {
  const res = await fetch('/api/products')
  if (!res.ok) return null
  const products = await res.json()
  return (
    <ul>
      {products.map((p) => <li key={p.id}>{p.name}</li>)}
    </ul>
  )
}
"""


def test_a_list_loaded_without_paging_and_rendered(tmp_path: Path) -> None:
    facts = _facts(tmp_path, {"src/Products.tsx": LIST})

    assert _kinds(facts) == [FactKind.UNPAGED_LIST]
    assert [item.start_line for item in facts[0].evidence] == [2, 7]


def test_a_paged_list_or_an_unknown_url_is_not_a_fact(tmp_path: Path) -> None:
    paged = LIST.replace("'/api/products'", "`/api/products?cursor=${cursor}`")
    unknown = LIST.replace("'/api/products'", "url")
    assert _facts(tmp_path, {"src/A.tsx": paged, "src/B.tsx": unknown}) == []


def test_a_list_from_a_loader_in_another_file(tmp_path: Path) -> None:
    loader = (
        "export async function getItems() {\n  const r = await fetch('/api/items')\n"
        "  if (!r.ok) throw new Error('items')\n  return r.json()\n}\n"
    )
    page = (
        "import { getItems } from './items'\nexport default async function Page() {\n"
        "  const items = await getItems()\n  return <ul>{items.map((i) => <li>{i}</li>)}</ul>\n}\n"
    )
    facts = _facts(tmp_path, {"src/items.ts": loader, "src/view.tsx": page})

    assert _kinds(facts) == [FactKind.UNPAGED_LIST]
    assert facts[0].path == "src/view.tsx" and facts[0].symbol == "getItems"
    assert [(e.path, e.start_line) for e in facts[0].evidence] == [
        ("src/view.tsx", 4),
        ("src/items.ts", 2),
    ]


def test_a_fixed_grid_without_breakpoints(tmp_path: Path) -> None:
    fixed = 'export const Grid = () => (\n  <div className="grid grid-cols-4 gap-2">x</div>\n)\n'
    styled = "export const S = () => <div style={{ gridTemplateColumns: 'repeat(3, 1fr)' }} />\n"
    facts = _facts(tmp_path, {"src/Grid.tsx": fixed, "src/S.tsx": styled})

    assert _kinds(facts) == [FactKind.FIXED_GRID, FactKind.FIXED_GRID]
    assert facts[0].evidence[0].start_line == 2 and facts[0].note == "grid-cols-4"


def test_a_responsive_grid_is_not_a_fact(tmp_path: Path) -> None:
    responsive = 'export const G = () => <div className="grid grid-cols-1 md:grid-cols-3" />\n'
    fluid = (
        "export const F = () => (\n"
        "  <div style={{ gridTemplateColumns: 'repeat(auto-fill, 10rem)' }} />\n)\n"
    )
    assert _facts(tmp_path, {"src/G.tsx": responsive, "src/F.tsx": fluid}) == []


def test_todo_and_fixme_comments_not_strings(tmp_path: Path) -> None:
    code = (
        "// TODO: handle the empty cart\nconst label = 'TODO list'\n"
        "export function C() {\n  return <div>{/* FIXME the total is rounded twice */}</div>\n}\n"
    )
    python = "def total():\n    # TODO: apply discounts\n    return 'FIXME not a comment'\n"
    facts = _facts(tmp_path, {"src/Cart.tsx": code, "app/cart.py": python})

    assert _kinds(facts) == [FactKind.TODO] * 3
    assert [(f.path, f.evidence[0].start_line) for f in facts] == [
        ("src/Cart.tsx", 1),
        ("src/Cart.tsx", 4),
        ("app/cart.py", 2),
    ]
    assert facts[0].note == "handle the empty cart"


FORM = """\
export function Form() {
  return (
    <form>
      <input name="q" placeholder="Search" />
      <select name="sort"><option>a</option></select>
      <input type="hidden" name="t" />
      <input aria-label="Name" name="name" />
      <label htmlFor="email">E-mail</label>
      <input id="email" name="email" />
      <label>Age <input name="age" /></label>
      <textarea {...props} />
    </form>
  )
}
"""


def test_inputs_without_a_label(tmp_path: Path) -> None:
    facts = _facts(tmp_path, {"src/Form.tsx": FORM})

    assert _kinds(facts) == [FactKind.UNLABELLED_INPUT]
    assert [item.start_line for item in facts[0].evidence] == [4, 5]


def test_labelled_inputs_are_not_a_fact(tmp_path: Path) -> None:
    labelled = "\n".join(line for line in FORM.split("\n") if 'name="q"' not in line)
    labelled = labelled.replace('<select name="sort">', '<select aria-label="Sort" name="sort">')
    assert _facts(tmp_path, {"src/Form.tsx": labelled}) == []


PAGE = "export default function SearchPage() {\n  return <main>search</main>\n}\n"


def test_a_route_without_loading_or_error(tmp_path: Path) -> None:
    facts = _facts(tmp_path, {"app/search/page.tsx": PAGE})

    assert _kinds(facts) == [FactKind.MISSING_ROUTE_STATE]
    assert facts[0].note == "loading and error"
    assert facts[0].evidence[0].start_line == 1
    assert facts[0].minor  # it loads no data yet: true, but of little weight


def test_a_route_that_loads_data_without_loading_or_error(tmp_path: Path) -> None:
    page = (
        "async function OrdersPage() {\n  const orders = await getOrders()\n"
        "  return <main>{orders.length}</main>\n}\n\nexport default OrdersPage\n"
    )
    write(tmp_path / "app/orders/error.tsx", "export default function E() { return null }\n")
    facts = _facts(tmp_path, {"app/orders/page.tsx": page})

    assert [(f.kind, f.note, f.minor) for f in facts] == [
        (FactKind.MISSING_ROUTE_STATE, "loading", False)
    ]
    assert facts[0].evidence[0].quote == "export default OrdersPage"


def test_a_route_with_its_states_or_a_parents_is_not_a_fact(tmp_path: Path) -> None:
    files = {
        "app/search/page.tsx": PAGE,
        "app/search/loading.tsx": "export default function Loading() { return null }\n",
        "app/error.tsx": "'use client'\nexport default function E() { return null }\n",
    }
    assert _facts(tmp_path, files, "app/search/page.tsx") == []


RULES = "# Contributing\n\n- Keep PRs small.\n- Every component must have a test beside it.\n"
CARD = "export function ResultCard() {\n  return <article />\n}\n"


def test_a_component_without_the_test_the_rules_require(tmp_path: Path) -> None:
    write(tmp_path / "CONTRIBUTING.md", RULES)
    facts = _facts(tmp_path, {"src/components/ResultCard.tsx": CARD})

    assert _kinds(facts) == [FactKind.UNTESTED_COMPONENT]
    component, rule = facts[0].evidence
    assert (component.path, component.start_line) == ("src/components/ResultCard.tsx", 1)
    assert (rule.path, rule.start_line) == ("CONTRIBUTING.md", 4)


def test_a_tested_component_or_no_rule_is_not_a_fact(tmp_path: Path) -> None:
    files = {"src/components/ResultCard.tsx": CARD, "src/components/ResultCard.test.tsx": "x\n"}
    assert _facts(tmp_path / "norule", {"src/components/ResultCard.tsx": CARD}) == []
    write(tmp_path / "rule" / "CLAUDE.md", RULES)
    assert _facts(tmp_path / "rule", files, "src/components/ResultCard.tsx") == []


def test_vue_and_svelte_script_blocks(tmp_path: Path) -> None:
    vue = (
        '<template>\n  <div>{{ x }}</div>\n</template>\n<script setup lang="ts">\n'
        "// TODO: cache the rates\nconst r = await fetch('/api/rates?limit=3')\n"
        "const rates = await r.json()\n</script>\n"
    )
    svelte = '<script>\n  const rows = [1, 2]\n</script>\n\n<div class="grid grid-cols-3">x</div>\n'
    facts = _facts(tmp_path, {"src/Rates.vue": vue, "src/Rows.svelte": svelte})

    assert sorted((f.path, f.kind, f.evidence[0].start_line) for f in facts) == [
        ("src/Rates.vue", FactKind.TODO, 5),
        ("src/Rates.vue", FactKind.UNCHECKED_FETCH, 6),
        ("src/Rows.svelte", FactKind.FIXED_GRID, 5),
    ]  # the rows of the file, not of the block; the template is read too (test_code_facts_sfc)


def test_python_requests_without_a_status_check(tmp_path: Path) -> None:
    code = (
        "import requests\n\ndef rates():\n    reply = requests.get('https://x/rates')\n"
        "    return reply.json()\n\ndef checked():\n    reply = requests.get('https://x')\n"
        "    reply.raise_for_status()\n    return reply.json()\n"
    )
    facts = _facts(tmp_path, {"app/rates.py": code})

    assert [(f.kind, f.symbol, f.evidence[0].start_line) for f in facts] == [
        (FactKind.UNCHECKED_FETCH, "rates", 4)
    ]


def test_a_returned_chain_without_then_is_left_to_the_caller(tmp_path: Path) -> None:
    code = (
        "export function remove(url) {\n  return fetch('/api/x', { method: 'DELETE' })"
        ".catch(() => {})\n}\nexport function read() {\n"
        "  return fetch('/api/y?page=1').then((r) => r.json())\n}\n"
    )
    facts = _facts(tmp_path, {"src/api.js": code})

    assert [(f.symbol, f.evidence[0].start_line) for f in facts] == [("read", 5)]


STATE_LIST = """\
export function Orders() {
  const [orders, setOrders] = useState([])
  const [user] = useState(null)
  useEffect(() => {
    fetch('/api/orders').then((r) => r.json()).then(setOrders)
  }, [])
  const tags = ['a', 'b']
  return (
    <div>
      {tags.map((t) => <b key={t}>{t}</b>)}
      {orders.map((o) => <p key={o.id}>{o.total}</p>)}
    </div>
  )
}
"""


def test_a_list_held_in_state_is_traced_to_its_request(tmp_path: Path) -> None:
    facts = _facts(tmp_path, {"src/Orders.tsx": STATE_LIST})

    lists = [f for f in facts if f.kind is FactKind.UNPAGED_LIST]
    assert [[e.start_line for e in f.evidence] for f in lists] == [[5, 11]]  # not tags (10)


def test_a_map_over_data_not_from_the_request_is_not_a_fact(tmp_path: Path) -> None:
    code = (
        "export async function Profile() {\n  const res = await fetch('/api/me')\n"
        "  if (!res.ok) return null\n  const me = await res.json()\n"
        "  const links = ['a', 'b']\n  return <ul>{links.map((l) => <li>{l}</li>)}</ul>\n}\n"
    )
    assert _facts(tmp_path, {"src/Profile.tsx": code}) == []


PY_VIEWS = """\
def orders(request):
    orders = Order.objects.all()
    return render(request, "orders.html", {"orders": orders})


def paged(request):
    rows = Order.objects.all()
    page = Paginator(rows, 25).get_page(request.GET.get("page"))
    return render(request, "orders.html", {"page": page})


def sliced(request):
    return list(Order.objects.filter(open=True)[:50])


def api(session):
    for row in session.scalars(select(Order)).all():
        yield row
"""


def test_a_python_query_that_loads_every_row(tmp_path: Path) -> None:
    facts = _facts(tmp_path, {"shop/views.py": PY_VIEWS})

    assert [(f.kind, f.symbol, [e.start_line for e in f.evidence]) for f in facts] == [
        (FactKind.UNPAGED_LIST, "orders", [2, 3]),
        (FactKind.UNPAGED_LIST, "api", [17]),
    ]  # not the paginated one, nor the sliced one


def test_runs_in_several_threads_at_once_give_the_same_facts(tmp_path: Path) -> None:
    files = {"src/Form.tsx": FORM, "src/Products.tsx": LIST, "src/orders.ts": UNCHECKED}
    first = _facts(tmp_path, files)
    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda _: find_facts(tmp_path, list(files), nearby=False), range(8)))

    assert all(run.facts == first for run in runs)


# -- what the page already shows: its boundaries, the data it loads ---------------------------

BOUNDED = """\
import { Suspense } from 'react'
import { ErrorBoundary } from 'react-error-boundary'
import { Table } from './table'

export default async function OrdersPage() {
  return (
    <main>
      <ErrorBoundary fallback={<p>Could not load the orders</p>}>
        <Suspense fallback={<p>Loading…</p>}>
          <Table />
        </Suspense>
      </ErrorBoundary>
    </main>
  )
}
"""


def test_a_page_with_its_own_suspense_and_error_boundary_has_its_states(tmp_path: Path) -> None:
    files = {"app/orders/page.tsx": BOUNDED, "app/orders/table.tsx": "export const T = 1\n"}
    assert _facts(tmp_path, files, "app/orders/page.tsx") == []


def test_a_page_with_only_a_suspense_lacks_only_its_error_state(tmp_path: Path) -> None:
    page = BOUNDED.replace("<ErrorBoundary fallback={<p>Could not load the orders</p>}>", "<>")
    page = page.replace("</ErrorBoundary>", "</>")
    facts = _facts(tmp_path, {"app/orders/page.tsx": page})

    assert [(f.kind, f.note) for f in facts] == [(FactKind.MISSING_ROUTE_STATE, "error")]
    assert "feedback" not in facts[0].detail and "error boundary" in facts[0].detail


def test_a_suspense_without_a_fallback_or_around_a_layouts_other_part_is_not_loading(
    tmp_path: Path,
) -> None:
    page = "import { Suspense } from 'react'\nexport default function P() {\n"
    page += "  return <Suspense><main /></Suspense>\n}\n"
    layout = (
        "export default function Layout({ children }) {\n"
        "  return <div><Suspense fallback={<p />}><Nav /></Suspense>{children}</div>\n}\n"
    )
    write(tmp_path / "app/layout.tsx", layout)
    facts = _facts(tmp_path, {"app/orders/page.tsx": page})
    assert [f.note for f in facts] == ["loading and error"]


def test_a_layout_that_wraps_its_children_in_suspense_gives_loading_feedback(
    tmp_path: Path,
) -> None:
    write(
        tmp_path / "app/(shop)/layout.tsx",
        "export default function Layout({ children }) {\n"
        "  return <Suspense fallback={<Spinner />}>{children}</Suspense>\n}\n",
    )
    write(tmp_path / "app/error.tsx", "export default function E() { return null }\n")
    assert _facts(tmp_path, {"app/(shop)/orders/page.tsx": PAGE}) == []


def test_prefetching_is_loading_data(tmp_path: Path) -> None:
    page = (
        "import { prefetch, trpc } from '@/trpc/server'\n\n"
        "export default async function SettingsPage() {\n"
        "  prefetch(trpc.team.current.queryOptions())\n  return <main />\n}\n"
    )
    facts = _facts(tmp_path, {"app/settings/page.tsx": page})

    assert [(f.kind, f.minor) for f in facts] == [(FactKind.MISSING_ROUTE_STATE, False)]
    assert "loads no data" not in facts[0].detail
    assert [e.start_line for e in facts[0].evidence] == [3, 4]  # the page, then its prefetch


def test_a_query_hook_in_a_component_the_page_renders_is_loading_data(tmp_path: Path) -> None:
    files = {
        "src/app/team/page.tsx": "import { TeamName } from '@/components/team-name'\n\n"
        "export default function TeamPage() {\n  return <TeamName />\n}\n",
        "src/components/team-name.tsx": "import { useTeam } from '../hooks/use-team'\n\n"
        "export function TeamName() {\n  const { data } = useTeam()\n"
        "  return <h1>{data.name}</h1>\n}\n",
        "src/hooks/use-team.ts": "export function useTeam() {\n"
        "  return useSuspenseQuery({ queryKey: ['team'], queryFn: getTeam })\n}\n",
    }
    facts = _facts(tmp_path, files)

    route = next(f for f in facts if f.kind is FactKind.MISSING_ROUTE_STATE)
    assert not route.minor and "loads no data" not in route.detail
    assert [(e.path, e.start_line) for e in route.evidence] == [
        ("src/app/team/page.tsx", 3),
        ("src/hooks/use-team.ts", 2),
    ]


def test_a_hook_in_a_file_the_page_does_not_import_is_not_its_data(tmp_path: Path) -> None:
    files = {
        "src/app/team/page.tsx": PAGE,
        "src/hooks/use-team.ts": "export const useTeam = () => useQuery({ queryKey: ['t'] })\n",
    }
    facts = _facts(tmp_path, files)
    assert [(f.kind, f.minor) for f in facts] == [(FactKind.MISSING_ROUTE_STATE, True)]


# -- controls: hidden ones, design systems' ones, react-hook-form's field ---------------------

HIDDEN = """\
export function Upload() {
  return (
    <div>
      <input type="file" style={{ display: "none" }} onChange={upload} />
      <input type="file" hidden />
      <input name="a" className="sr-only peer" />
      <input name="b" className="hidden" />
      <input name="c" aria-hidden="true" />
      <input name="d" style={{ visibility: 'hidden' }} />
      <input name="e" className="md:hidden" />
    </div>
  )
}
"""


def test_hidden_inputs_are_not_claimed(tmp_path: Path) -> None:
    facts = _facts(tmp_path, {"src/Upload.tsx": HIDDEN})

    assert _kinds(facts) == [FactKind.UNLABELLED_INPUT]
    assert [item.start_line for item in facts[0].evidence] == [10]  # shown on a phone


KIT_FORM = """\
import { Input } from "@acme/ui/input"
import { Textarea as TextArea } from "@/components/ui/textarea"
import { Label } from "@acme/ui/label"
import { Select, SelectTrigger } from "@acme/ui/select"
import { Form, FormControl, FormField, FormItem, FormLabel } from "@acme/ui/form"

export function TeamForm({ form, props }) {
  return (
    <Form {...form}>
      <Input placeholder="Search members" />
      <TextArea
        rows={3}
      />
      <Label htmlFor="confirm">Type DELETE</Label>
      <Input id="confirm" />
      <FormField
        control={form.control}
        name="name"
        render={({ field }) => (
          <FormItem>
            <FormControl>
              <Input {...field} />
            </FormControl>
          </FormItem>
        )}
      />
      <FormField
        control={form.control}
        name="email"
        render={({ field }) => (
          <FormItem>
            <FormLabel>E-mail</FormLabel>
            <FormControl>
              <Input {...field} placeholder="Email" />
            </FormControl>
          </FormItem>
        )}
      />
      <Input {...props} />
      <Select><SelectTrigger aria-label="Currency" /></Select>
      <Label>Notes <Input name="notes" /></Label>
    </Form>
  )
}
"""


def test_design_system_controls_and_their_labels(tmp_path: Path) -> None:
    facts = _facts(tmp_path, {"src/team-form.tsx": KIT_FORM})

    assert _kinds(facts) == [FactKind.UNLABELLED_INPUT]
    # the placeholder-only Input, the bare TextArea (cited whole), the field with no FormLabel
    assert [(e.start_line, e.end_line) for e in facts[0].evidence] == [(10, 10), (11, 13), (22, 22)]
    assert facts[0].note == "<Input>, <TextArea>"
    assert "<FormLabel>" in facts[0].detail


def test_a_capitalised_input_not_from_a_ui_kit_is_not_a_control(tmp_path: Path) -> None:
    code = "import { Input } from './chat/Input'\n\nexport function C() {\n"
    code += "  return <Input placeholder='Say hi' />\n}\n"
    assert _facts(tmp_path, {"src/C.tsx": code}) == []


def test_one_column_is_not_a_fixed_grid(tmp_path: Path) -> None:
    code = (
        "export function Cards() {\n  return (\n    <div>\n"
        '      <ul className="grid grid-cols-1 gap-4" />\n'
        '      <ul className="grid grid-cols-3 gap-4" />\n    </div>\n  )\n}\n'
    )
    facts = _facts(tmp_path, {"src/Cards.tsx": code})
    assert [(f.kind, f.note, [e.start_line for e in f.evidence]) for f in facts] == [
        (FactKind.FIXED_GRID, "grid-cols-3", [5])
    ]
    one = code.replace("grid-cols-3", "flex")
    assert _facts(tmp_path, {"src/Cards.tsx": one}) == []


SWR_BOARD = """\
import useSWR from 'swr'

export function ShipmentBoard() {
  const { data: shipments = [] } = useSWR('/api/shipments', fetcher)
  return (
    <ul>
      {shipments.map((s) => (
        <li key={s.id}>{s.code}</li>
      ))}
    </ul>
  )
}
"""


def test_a_list_destructured_from_a_data_hook(tmp_path: Path) -> None:
    shorthand = SWR_BOARD.replace("{ data: shipments = [] }", "{ shipments }")
    facts = _facts(tmp_path, {"src/Board.tsx": SWR_BOARD, "src/Short.tsx": shorthand})

    assert [(f.kind, f.path, [e.start_line for e in f.evidence]) for f in facts] == [
        (FactKind.UNPAGED_LIST, "src/Board.tsx", [4, 7]),
        (FactKind.UNPAGED_LIST, "src/Short.tsx", [4, 7]),
    ]


def test_a_destructured_list_that_is_paged_or_sliced_is_not_a_fact(tmp_path: Path) -> None:
    paged = SWR_BOARD.replace("'/api/shipments'", "'/api/shipments?page=1'")
    limited = SWR_BOARD.replace("'/api/shipments'", "`/api/shipments?limit=${size}`")
    sliced = SWR_BOARD.replace("shipments.map(", "shipments.slice(0, 20).map(")
    kept = SWR_BOARD.replace(
        "  return (\n", "  const shown = shipments.slice(0, 20)\n  return (\n"
    ).replace("shipments.map(", "shown.map(")
    default = SWR_BOARD.replace("= []", "= fallback").replace("shipments.map(", "fallback.map(")
    files = {
        "src/Paged.tsx": paged,
        "src/Limited.tsx": limited,
        "src/Sliced.tsx": sliced,
        "src/Kept.tsx": kept,
        "src/Default.tsx": default,  # the default value is not what the hook loads
    }
    assert _facts(tmp_path, files) == []


DJANGO_VIEW = """\
from django.shortcuts import render


def invoice_list(request):
    return render(request, "billing/list.html", {"invoices": []})
"""
DJANGO_TEMPLATE = """\
{% extends "base.html" %}
{% block content %}
<form method="get">
  <input type="text" name="q" placeholder="Invoice number">
  <select
    name="status">
  </select>
</form>
{% endblock %}
"""


def test_an_unlabelled_input_in_the_template_a_view_renders(tmp_path: Path) -> None:
    files = {
        "billing/views.py": DJANGO_VIEW,
        "billing/templates/billing/list.html": DJANGO_TEMPLATE,
        "billing/templates/billing/other.html": '<input name="unrendered">\n',
    }
    for rel, text in files.items():
        write(tmp_path / rel, text)
    report = find_facts(tmp_path, ["billing/views.py"], nearby=False)

    assert report.files_read == ["billing/views.py", "billing/templates/billing/list.html"]
    [fact] = report.facts
    _assert_verified(tmp_path, fact)
    assert (fact.kind, fact.path, fact.own) == (
        FactKind.UNLABELLED_INPUT,
        "billing/templates/billing/list.html",
        True,
    )
    assert [(e.start_line, e.end_line) for e in fact.evidence] == [(4, 4), (5, 6)]


def test_a_project_template_folder_and_flask(tmp_path: Path) -> None:
    view = "from flask import render_template\n\n@app.get('/')\ndef index():\n"
    view += "    return render_template('search.html')\n"
    facts = _facts(
        tmp_path,
        {"web/app/views.py": view, "web/templates/search.html": '<p><input name="q"></p>\n'},
        "web/app/views.py",
    )

    assert [(f.kind, f.path, f.evidence[0].start_line) for f in facts] == [
        (FactKind.UNLABELLED_INPUT, "web/templates/search.html", 1)
    ]


def test_labelled_hidden_and_tag_rendered_template_inputs_are_not_a_fact(tmp_path: Path) -> None:
    template = """\
{% extends "base.html" %}
<form method="post">
  {% csrf_token %}
  <input type="hidden" name="next" value="{{ next }}">
  <label for="q">Search</label>
  <input id="q" type="text" name="q">
  <label>Status <select name="status"></select></label>
  <input type="text" name="a" aria-label="Amount">
  <textarea name="note" aria-labelledby="note-label"></textarea>
  <input type="email" name="mail" title="Email">
  <label for="{{ form.name.id_for_label }}">Name</label>
  <input id="{{ form.name.id_for_label }}" name="name">
  {{ form.email }}
  {{ form.as_p }}
  <input type="text" name="city" {% if form.city.field.required %}required{% endif %}>
  <input type="submit" value="Save">
</form>
"""
    files = {"billing/views.py": DJANGO_VIEW, "billing/templates/billing/list.html": template}
    assert _facts(tmp_path, files, "billing/views.py") == []
