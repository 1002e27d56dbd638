"""Synthetic feeds for tests and the offline preset: plausible headlines from templates, labels known.

True headlines are routine civic, science and health news; false ones are the fabricated or
satirical kind the release mixes in (miracle cures, secret plots, impossible events). Sources are
fictional domains, one pool per label, as in a feed mixing mainstream outlets with fabricated
sites. Nothing here comes from the release: the templates are written for lmlab.
"""

from __future__ import annotations

from lmlab.seeding import derive, numpy_rng
from lmlab.studies.misinfo_eval.data import POSTS_PER_FEED, Feed, Post

TRUE_TEMPLATES = (
    "{city} council approves new budget for {service}",
    "Health officials report rise in {illness} cases across {region}",
    "{agency} updates guidance on {illness} vaccines for older adults",
    "Study finds regular exercise lowers risk of {condition}",
    "{city} opens new public library branch after three years of construction",
    "Senate committee schedules hearing on {topic} funding",
    "Heavy rain causes flooding in parts of {region}, officials say",
    "Local schools in {city} extend free lunch program through summer",
    "Researchers publish data on {illness} hospital admissions in {region}",
    "{agency} announces recall of contaminated {food} products",
)
FALSE_TEMPLATES = (
    "Scientists confirm {celebrity} is secretly a {creature}",
    "Drinking {drink} every morning cures {illness}, doctors stunned",
    "{agency} admits {illness} vaccines contain tracking microchips",
    "{city} mayor arrested for smuggling {creature}s through city hall tunnels",
    "Government to ban {food} nationwide starting next week",
    "{celebrity} buys the Moon and plans to charge rent to {region}",
    "Secret memo reveals {topic} was invented by a foreign marketing firm",
    "Eating {food} before bed makes you immune to {illness}, study claims",
    "{region} votes to replace all police with trained {creature}s",
    "Leaked video shows {celebrity} controlling the weather over {city}",
)
FILLERS = {
    "city": ("Springfield", "Riverton", "Lakewood", "Fairview", "Greenville", "Oak Harbor"),
    "service": ("road repairs", "public transit", "park maintenance", "fire services"),
    "illness": ("flu", "measles", "COVID-19", "RSV", "diabetes"),
    "region": ("the Midwest", "the Pacific Northwest", "New England", "the Gulf Coast"),
    "agency": ("The CDC", "The FDA", "The health department", "The EPA"),
    "condition": ("heart disease", "type 2 diabetes", "depression", "stroke"),
    "topic": ("climate research", "rural broadband", "veterans' health care", "school safety"),
    "food": ("spinach", "peanut butter", "frozen pizza", "ground beef"),
    "celebrity": ("a famous pop star", "a tech billionaire", "a former president", "a talk show host"),
    "creature": ("lizard", "robot", "alien", "vampire"),
    "drink": ("bleach-free lemon water", "baking soda tea", "colloidal silver", "pickle juice"),
}
TRUE_SOURCES = ("DAILYLEDGER.EXAMPLE", "CITYHERALD.EXAMPLE", "NATIONALWIRE.EXAMPLE",
                "PUBLICRADIO.EXAMPLE", "METROTIMES.EXAMPLE")
FALSE_SOURCES = ("TRUTHUNCOVERED.EXAMPLE", "REALPATRIOTNEWS.EXAMPLE", "DAILYSHOCKER.EXAMPLE",
                 "FREEDOMBUZZ.EXAMPLE", "SATIREWEEKLY.EXAMPLE")


def _fill(template: str, rng) -> str:
    out = template
    for key, options in FILLERS.items():
        token = "{" + key + "}"
        while token in out:
            out = out.replace(token, options[int(rng.integers(len(options)))], 1)
    return out


def synthetic_feeds(n_feeds: int, seed: int = 0, true_fraction: float = 0.5) -> list[Feed]:
    """`n_feeds` feeds of five distinct posts; each label is True with `true_fraction`.

    Labels are balanced across the whole set (round(n * true_fraction) true posts, shuffled),
    headlines are distinct, and the same seed gives the same feeds.
    """
    n = n_feeds * POSTS_PER_FEED
    rng = numpy_rng(derive(seed, "synthetic-feeds"))
    labels = [True] * round(n * true_fraction) + [False] * (n - round(n * true_fraction))
    rng.shuffle(labels)
    seen: set[str] = set()
    posts = []
    for k, label in enumerate(labels):
        templates = TRUE_TEMPLATES if label else FALSE_TEMPLATES
        for _ in range(1000):
            h = _fill(templates[int(rng.integers(len(templates)))], rng)
            if h not in seen:
                break
        else:  # the template space is exhausted: make the headline unique by numbering it
            h = f"{h} ({k})"
        seen.add(h)
        sources = TRUE_SOURCES if label else FALSE_SOURCES
        posts.append((h, sources[int(rng.integers(len(sources)))], label, int(rng.integers(2, 24))))
    feeds = []
    for f in range(n_feeds):
        fid = f"feed-{f + 1}"
        chunk = posts[f * POSTS_PER_FEED:(f + 1) * POSTS_PER_FEED]
        feeds.append(Feed(fid, tuple(
            Post(post_id=f"{fid}/{i + 1}", headline=h, source=s, label=lab, time=t,
                 image_url=f"https://images.example/{fid}-{i + 1}.jpg")
            for i, (h, s, lab, t) in enumerate(chunk)
        )))
    return feeds
