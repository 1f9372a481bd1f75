"""How one result reads: title, category, similarity, price and link, within Telegram's limits.

Plain text (no parse mode), so catalog text can never break the message's markup; Telegram
turns the URL into a link by itself.
"""

from retrieval.results import Hit

CAPTION_LIMIT = 1024  # Telegram's limit on a photo caption
TITLE_LIMIT = 200
LABEL_LIMIT = 40  # a category as a header or a button shows it


def similarity_percent(score: float) -> int:
    """Cosine similarity as a whole percentage, clamped to 0..100."""
    return max(0, min(100, round(score * 100)))


def caption(rank: int, hit: Hit) -> str:
    """The caption under result `rank` (1-based); never longer than 1024 characters."""
    product = hit.product
    lines = [f"#{rank} {clip(product.title.strip() or product.id, TITLE_LIMIT)}"]
    details = [", ".join(map(shown, product.categories))] if product.categories else []
    details.append(f"{similarity_percent(hit.score)}% similar")
    lines.append(" · ".join(details))
    if product.price:
        lines.append(f"Price: {clip(product.price.strip(), 60)}")
    if hit.also_as:  # products sharing this picture, merged into this one slot
        names = ", ".join(p.title.strip() or p.id for p in hit.also_as)
        lines.append(f"Also as: {clip(names, TITLE_LIMIT)}")
    text = "\n".join(lines)
    link = (product.url or "").strip()
    if link and len(text) + 1 + len(link) <= CAPTION_LIMIT:
        text += "\n" + link  # a link is useless cut short: all of it, or none
    return clip(text, CAPTION_LIMIT)


NO_MATCH = "Nothing in the catalog looks much like this; here are the closest products. "


def objects_caption(labels: list[str]) -> str:
    """The caption of a room photo with its objects boxed and numbered."""
    first = shown(labels[0])
    return (
        f"I see {len(labels)} things here. Below: matches for 1 · {first}. "
        "Tap a number to search another one, or “Whole photo”."
    )


def results_header(offset: int, count: int, category: str | None) -> str:
    """The text of the message that carries the buttons under an album."""
    where = f" in {shown(category)}" if category else ""
    if count == 0:
        return f"No more matches{where}." if offset else f"No matches{where}."
    return f"Matches {offset + 1}–{offset + count}{where}. Tap a button for more."


def shown(name: str) -> str:
    """A category or an object's name as a shopper reads it: a folder name's underscores as
    spaces ("chest_of_drawers": "chest of drawers"), clipped to `LABEL_LIMIT`."""
    return clip(name.replace("_", " ").strip() or name, LABEL_LIMIT)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
