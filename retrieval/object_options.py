"""How a room photo's first object is found, stated once: Settings, SearchService and the
object step read these.

The first object's album is what a shopper sees at once, so it gets a forward pass of its own:
its box cut out of the photo and embedded by the query network, mixed with the box pooled from
the map (on rooms_bench, first-object hit@5 0.164 → 0.198 over 7 pseudo-room draws for one
forward more, docs/objects.md). The shipped detector can pick that box instead of the region
map (a better box for chairs and tables, about one query more), so it is the operator's
choice.
"""

from dataclasses import dataclass

CUT_OUTS = 1  # map boxes cut out when on: the clearer of 2 lost at 256 px (docs/objects.md)
# a room photo's bytes are decoded again at this × the query side for the first object's cut-out:
# out of the product's decode (about the query side) 78 % of those boxes were enlarged; first
# object hit@5 +1.1 rooms of 60 over 7 pseudo-room draws (docs/objects.md, twenty-second pass)
CUT_OUT_SOURCE = 2


@dataclass(frozen=True)
class ObjectOptions:
    """The first object's source: the detector's box, else the map's best boxes cut out."""

    detect: bool = False  # the shipped chair/table/desk detector picks the first object
    cut_outs: int = CUT_OUTS  # the map's best boxes cut out and embedded again (0: pooled)
    threads: int = 0  # the detector's inference threads, as Settings.threads (0: all cores)


DEFAULT_OBJECTS = ObjectOptions()
