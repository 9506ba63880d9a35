"""Facts read from Vue and Svelte templates (``agent.sfc`` with ``agent.facts``): an
unlabelled control, a fixed grid, a list rendered whole from an unpaged request, a TODO in an
HTML comment; found where the template shows them, not where it does not, with lines of the
file (not of a block) that the verifier confirms."""

from __future__ import annotations

from pathlib import Path

from feature_planner.agent.facts import Fact, FactKind, find_facts
from tests.agent.test_code_facts import _facts


def _where(facts: list[Fact], kind: FactKind) -> list[tuple[str, list[int]]]:
    return [(f.path, [e.start_line for e in f.evidence]) for f in facts if f.kind is kind]


VUE_FORM = """\
<template>
  <form @submit.prevent="search">
    <input v-model="query" placeholder="Search" />
    <select
      v-model="sort"
      class="sort"
    ><option>a</option></select>
    <input :aria-label="t('name')" v-model="name">
    <input v-bind:title="hint" v-model="title" />
    <input aria-labelledby="who" v-model="who" />
    <input v-bind="attrs" />
    <label for="email">E-mail</label>
    <input id="email" v-model="email" />
    <label :for="ageId">Age</label>
    <input :id="ageId" v-model="age" />
    <label>Notes <textarea v-model="notes"></textarea></label>
    <input type="hidden" name="t" />
    <input :type="kind" v-model="x" />
    <input hidden name="h" />
    <p>{{ a > 1 ? 'many' : 'one' }}</p>
  </form>
</template>

<script setup lang="ts">
const query = ref('')
</script>
"""


def test_vue_controls_without_a_label(tmp_path: Path) -> None:
    facts = _facts(tmp_path, {"src/components/SearchForm.vue": VUE_FORM})

    assert _kinds_of(facts) == [FactKind.UNLABELLED_INPUT]
    fact = facts[0]
    assert fact.note == "<input>, <select>"
    assert [(e.start_line, e.end_line) for e in fact.evidence] == [(3, 3), (4, 7)]
    assert fact.evidence[1].quote.startswith('<select v-model="sort" class="sort" >')


def test_a_labelled_vue_form_is_not_a_fact(tmp_path: Path) -> None:
    labelled = VUE_FORM.replace('<input v-model="query"', '<input aria-label="Search"')
    labelled = labelled.replace('v-model="sort"', ':aria-label="sortLabel" v-model="sort"')
    assert _facts(tmp_path, {"src/components/SearchForm.vue": labelled}) == []


SVELTE_FORM = """\
<script>
  export let props = {}
  let query = ''
</script>

<form on:submit|preventDefault={search}>
  <input bind:value={query} placeholder="Search" />
  <input aria-label={label} bind:value={name} />
  <input {...props} />
  <input {title} bind:value={t} />
  <label for="email">E-mail</label>
  <input id="email" type="email" />
  <label>Age <input bind:value={age} /></label>
  <textarea bind:value={notes}></textarea>
  {#if open}<select bind:value={sort}><option>a</option></select>{/if}
</form>
"""


def test_svelte_controls_without_a_label(tmp_path: Path) -> None:
    facts = _facts(tmp_path, {"src/lib/SearchForm.svelte": SVELTE_FORM})

    assert _where(facts, FactKind.UNLABELLED_INPUT) == [("src/lib/SearchForm.svelte", [7, 14, 15])]
    assert facts[0].note == "<input>, <textarea>, <select>"


def test_a_labelled_svelte_form_is_not_a_fact(tmp_path: Path) -> None:
    labelled = (
        SVELTE_FORM.replace("bind:value={query}", "bind:value={query} aria-label={l}")
        .replace("<textarea", "<textarea title={t}")
        .replace("<select", '<select aria-labelledby="s"')
    )
    assert _facts(tmp_path, {"src/lib/SearchForm.svelte": labelled}) == []


VUE_GRID = """\
<template>
  <section>
    <div class="grid grid-cols-3 gap-4">
      <slot />
    </div>
    <ul :class="{ 'grid-cols-4': wide, grid: true }"></ul>
  </section>
</template>

<style scoped>
/* FIXME: the gap is too wide */
.cards {
  display: grid;
  grid-template-columns: repeat(5, 1fr);
}
</style>
"""
SVELTE_GRID = """\
<script>
  export let extra = ''
</script>

<ul class="grid grid-cols-3 gap-2 {extra}">
  <li class:grid-cols-2={compact}>x</li>
</ul>
"""


def test_fixed_grids_in_templates_and_styles(tmp_path: Path) -> None:
    files = {"src/Cards.vue": VUE_GRID, "src/Cards.svelte": SVELTE_GRID}
    facts = _facts(tmp_path, files)

    assert _where(facts, FactKind.FIXED_GRID) == [
        ("src/Cards.vue", [3, 6, 14]),
        ("src/Cards.svelte", [5, 6]),
    ]
    grids = [f for f in facts if f.kind is FactKind.FIXED_GRID]
    assert [f.note for f in grids] == ["grid-cols-3", "grid-cols-3"]
    assert _where(facts, FactKind.TODO) == [("src/Cards.vue", [11])]  # a CSS comment


def test_a_responsive_component_grid_is_not_a_fact(tmp_path: Path) -> None:
    media = VUE_GRID.replace(
        "</style>", "@media (min-width: 40rem) { .cards { gap: 0 } }\n</style>"
    )
    variant = SVELTE_GRID.replace("grid-cols-3 gap-2", "grid-cols-1 md:grid-cols-3")
    bound = VUE_GRID.replace("grid: true", "'lg:grid-cols-6': true").replace("FIXME", "note")
    fluid = SVELTE_GRID.replace('class="grid grid-cols-3 gap-2 {extra}"', 'class="grid"').replace(
        "class:grid-cols-2={compact}",
        'style="grid-template-columns: repeat(auto-fill, minmax(8rem, 1fr))"',
    )
    bound_style = SVELTE_GRID.replace(
        'class="grid grid-cols-3 gap-2 {extra}"', "style:grid-template-columns={cols}"
    ).replace("class:grid-cols-2={compact}", "")
    hook = VUE_GRID.replace(
        "<style", "<script setup>\nconst { md } = useBreakpoints()\n</script>\n<style"
    )
    files = {
        "a/Media.vue": media.replace("FIXME", "note"),
        "a/Variant.svelte": variant,
        "a/Bound.vue": bound,
        "a/Fluid.svelte": fluid,
        "a/Hook.vue": hook.replace("FIXME", "note"),
        "a/BoundStyle.svelte": bound_style,
    }
    assert _facts(tmp_path, files) == []


VUE_LIST = """\
<template>
  <ul>
    <li v-for="tag in tags" :key="tag">{{ tag }}</li>
    <li
      v-for="(product, index) in products"
      :key="product.id"
    >{{ index }}: {{ product.name }}</li>
  </ul>
</template>

<script setup lang="ts">
import { onMounted, ref } from 'vue'

const tags = ref(['new', 'sale'])
const products = ref<Product[]>([])
onMounted(async () => {
  const res = await fetch('/api/products')
  if (!res.ok) return
  products.value = await res.json()
})
</script>
"""


def test_a_vue_list_loaded_without_paging_and_rendered_with_v_for(tmp_path: Path) -> None:
    facts = _facts(tmp_path, {"src/views/Products.vue": VUE_LIST})

    assert _where(facts, FactKind.UNPAGED_LIST) == [("src/views/Products.vue", [17, 5])]
    assert "v-for (line 5)" in facts[0].detail  # not the tags (line 3)


def test_other_ways_vue_holds_the_list(tmp_path: Path) -> None:
    nuxt = (
        '<template>\n  <p v-for="item in items">{{ item }}</p>\n</template>\n<script setup>\n'
        "const { data: items } = await useFetch('/api/items')\n</script>\n"
    )
    options = """\
<template>
  <div><Row v-for="row in rows" :row="row" /></div>
</template>
<script>
export default {
  data: () => ({ rows: [] }),
  methods: {
    load() {
      fetch('/api/rows').then((r) => r.json()).then((list) => { this.rows = list })
    },
  },
}
</script>
"""
    facts = _facts(tmp_path, {"pages/items.vue": nuxt, "src/Rows.vue": options})

    assert _where(facts, FactKind.UNPAGED_LIST) == [
        ("pages/items.vue", [5, 2]),
        ("src/Rows.vue", [9, 2]),
    ]


def test_a_paged_or_sliced_vue_list_is_not_a_fact(tmp_path: Path) -> None:
    paged = VUE_LIST.replace("'/api/products'", "`/api/products?page=${page.value}`")
    sliced = VUE_LIST.replace("in products", "in products.slice(0, 20)")
    other = VUE_LIST.replace("in products", "in featured")
    files = {"a/Paged.vue": paged, "a/Sliced.vue": sliced, "a/Other.vue": other}
    assert _facts(tmp_path, files) == []


SVELTE_LIST = """\
<script lang="ts">
  import { onMount } from 'svelte'
  let products = []
  onMount(async () => {
    const res = await fetch('/api/products')
    if (!res.ok) return
    products = await res.json()
  })
</script>

<h1>TODO list</h1>
<!-- TODO: show the price
     with its currency -->
{#if products.length}
  <ul>
    {#each products as product (product.id)}
      <li>{product.name}</li>
    {/each}
  </ul>
{/if}
"""


def test_a_svelte_list_loaded_without_paging_and_rendered_with_each(tmp_path: Path) -> None:
    facts = _facts(tmp_path, {"src/routes/products/List.svelte": SVELTE_LIST})

    assert _where(facts, FactKind.UNPAGED_LIST) == [("src/routes/products/List.svelte", [5, 16])]
    assert any("{#each} (line 16)" in f.detail for f in facts)
    todos = [f for f in facts if f.kind is FactKind.TODO]
    assert [(f.evidence[0].start_line, f.note) for f in todos] == [(12, "show the price")]


def test_a_paged_or_sliced_svelte_list_is_not_a_fact(tmp_path: Path) -> None:
    quiet = SVELTE_LIST.replace("<!-- TODO: show", "<!-- show")
    paged = quiet.replace("'/api/products'", "'/api/products?limit=20'")
    sliced = quiet.replace("{#each products as", "{#each products.slice(0, 10) as")
    files = {"a/Paged.svelte": paged, "a/Sliced.svelte": sliced}
    assert _facts(tmp_path, files) == []


def test_sveltekit_data_from_a_load_that_does_not_page(tmp_path: Path) -> None:
    load = (
        "export async function load({ fetch }) {\n  const res = await fetch('/api/articles')\n"
        "  if (!res.ok) throw new Error('articles')\n  return { articles: await res.json() }\n}\n"
    )
    page = (
        "<script>\n  export let data\n</script>\n\n{#each data.articles as article}\n"
        "  <h2>{article.title}</h2>\n{/each}\n"
    )
    facts = _facts(
        tmp_path,
        {"src/routes/blog/+page.svelte": page, "src/routes/blog/+page.ts": load},
    )

    lists = [f for f in facts if f.kind is FactKind.UNPAGED_LIST]
    assert [(f.path, [(e.path, e.start_line) for e in f.evidence]) for f in lists] == [
        (
            "src/routes/blog/+page.svelte",
            [("src/routes/blog/+page.svelte", 5), ("src/routes/blog/+page.ts", 2)],
        )
    ]


def test_another_routes_load_is_not_the_pages(tmp_path: Path) -> None:
    load = "export async function load({ fetch }) {\n  return fetch('/api/articles')\n}\n"
    page = "<script>\n  export let data\n</script>\n{#each data.articles as a}{a}{/each}\n"
    files = {"src/routes/blog/+page.svelte": page, "src/routes/news/+page.ts": load}
    facts = _facts(tmp_path, files)

    assert [f for f in facts if f.kind is FactKind.UNPAGED_LIST] == []


def test_an_unparsable_or_empty_component_gives_nothing(tmp_path: Path) -> None:
    files = {
        "a/Empty.vue": "",
        "a/Broken.svelte": "<div class=\n{#each x as}\n<script>\n",
        "a/Pug.vue": '<template lang="pug">\ninput(v-model="q")\n</template>\n',
    }
    assert _facts(tmp_path, files) == []
    assert find_facts(tmp_path, list(files), nearby=False).files_read == list(files)


def _kinds_of(facts: list[Fact]) -> list[FactKind]:
    return [fact.kind for fact in facts]


def test_hidden_template_controls_are_not_claimed(tmp_path: Path) -> None:
    vue = (
        "<template>\n  <div>\n"
        '    <input type="file" style="display: none" @change="upload" />\n'
        '    <input class="sr-only peer" v-model="a" />\n'
        '    <input class="hidden" v-model="b" />\n'
        '    <input style="visibility: hidden" v-model="c" />\n'
        '    <input class="md:hidden" v-model="d" />\n'
        "  </div>\n</template>\n"
    )
    svelte = '<input class="sr-only" bind:value={a} />\n<input style="display:none" />\n'
    facts = _facts(tmp_path, {"src/Upload.vue": vue, "src/Upload.svelte": svelte})

    assert _where(facts, FactKind.UNLABELLED_INPUT) == [("src/Upload.vue", [7])]
