"""Catalogue text: titles, tags and descriptions from per-genre word lists. About a quarter of
the description phrases and a few tags come from other genres, so text is informative about
genre but noisy."""

from __future__ import annotations

import numpy as np

from export.data.synthetic.genres import GENRES

_VOCAB: dict[str, dict[str, tuple[str, ...]]] = {
    "classical": dict(
        adj=("Moonlit", "Pastoral", "Autumn", "Winter", "Eternal", "Noble", "Quiet", "Royal", "Silver", "Tender"),
        noun=("Sonata", "Nocturne", "Etude", "Prelude", "Serenade", "Fugue", "Concerto", "Waltz", "Adagio", "Symphony"),
        tags=("orchestral", "piano", "strings", "baroque", "romantic", "chamber", "instrumental", "calm"),
        phrases=("a slow string adagio", "a graceful piano sonata", "a chamber ensemble in full bloom",
                 "baroque counterpoint for harpsichord and strings", "a romantic symphony movement",
                 "soaring violins over a soft cello line")),
    "rock": dict(
        adj=("Electric", "Broken", "Wild", "Burning", "Loud", "Midnight", "Restless", "Iron", "Neon", "Reckless"),
        noun=("Highway", "Riot", "Engine", "Thunder", "Heart", "Road", "Fire", "Machine", "Rebel", "Anthem"),
        tags=("guitar", "drums", "energetic", "loud", "live", "indie", "classic-rock", "band"),
        phrases=("distorted guitars and pounding drums", "a stadium anthem with a huge chorus",
                 "raw riffs from a garage band", "a driving rock groove", "an overdriven guitar solo",
                 "a loud live set from a four-piece band")),
    "electronic": dict(
        adj=("Digital", "Neon", "Infinite", "Pulse", "Hyper", "Crystal", "Night", "Solar", "Binary", "Deep"),
        noun=("Circuit", "Signal", "Drive", "Wave", "Grid", "Orbit", "Loop", "Voltage", "Club", "Sequence"),
        tags=("synth", "dance", "house", "techno", "club", "beats", "edm", "bass"),
        phrases=("four-on-the-floor beats and pulsing synths", "a hypnotic techno loop",
                 "sidechained pads for the dance floor", "an arpeggiated synth line", "a deep house groove",
                 "a club track built on a driving kick")),
    "jazz": dict(
        adj=("Blue", "Smoky", "Late", "Cool", "Velvet", "Lazy", "Swinging", "Golden", "Mellow", "After-Hours"),
        noun=("Standard", "Ballad", "Bop", "Swing", "Groove", "Lounge", "Quartet", "Session", "Trio", "Riff"),
        tags=("saxophone", "swing", "trio", "bebop", "improvisation", "double-bass", "piano", "lounge"),
        phrases=("a piano trio improvising over a walking bass", "brushed drums and a mellow saxophone",
                 "a swinging standard from a smoky club", "bebop lines over changing chords",
                 "a laid-back lounge session", "a late-night quartet with a soft ride cymbal")),
    "ambient": dict(
        adj=("Drifting", "Floating", "Distant", "Still", "Endless", "Misty", "Soft", "Deep", "Slow", "Hazy"),
        noun=("Horizon", "Tide", "Cloud", "Haze", "Field", "Dream", "Ether", "Space", "Glow", "Echo"),
        tags=("calm", "drone", "relax", "sleep", "meditation", "atmospheric", "pads", "chill"),
        phrases=("slowly evolving pads", "a calm drone for sleep and focus", "warm washes of sound",
                 "an atmospheric soundscape", "soft textures that drift and fade", "a meditative piece with no beat")),
    "hiphop": dict(
        adj=("Street", "Real", "Heavy", "Hustle", "Golden", "Fresh", "Block", "Smooth", "Dirty", "Late"),
        noun=("Flow", "Cypher", "Beat", "Block", "Hustle", "Verse", "Corner", "Bars", "Crew", "Boom"),
        tags=("rap", "beats", "808", "boom-bap", "urban", "trap", "bass", "lyrics"),
        phrases=("a boom-bap beat with heavy 808 bass", "laid-back rap over a dusty sample",
                 "a head-nodding beat with crisp snares", "hard-hitting trap drums", "a smooth flow over a jazzy loop",
                 "booming bass and rolling hi-hats")),
    "talk": dict(
        adj=("Open", "Honest", "Long", "Late", "Candid", "Weekly", "Morning", "Quiet", "Big", "Real"),
        noun=("Conversation", "Interview", "Talk", "Call-In", "Debate", "Chat", "Forum", "Story", "Hour", "Table"),
        tags=("interview", "conversation", "speech", "radio", "call-in", "opinion", "culture", "voices"),
        phrases=("a long conversation with a guest", "listeners call in to share their stories",
                 "an honest interview about life and work", "a relaxed chat about culture",
                 "two hosts debate the week's topics", "a spoken-word hour of stories")),
    "news": dict(
        adj=("Morning", "Evening", "Daily", "World", "Breaking", "Local", "Business", "National", "Midday", "Weekend"),
        noun=("Bulletin", "Report", "Headlines", "Briefing", "Update", "Roundup", "Desk", "Digest", "Edition", "Wire"),
        tags=("headlines", "current-affairs", "politics", "weather", "business", "world", "breaking", "report"),
        phrases=("the latest headlines from around the world", "a briefing on politics and business",
                 "today's top stories and the weather", "breaking news and analysis",
                 "a roundup of local and national news", "reports from correspondents abroad")),
    "podcast": dict(
        adj=("Curious", "Hidden", "True", "Deep", "Weird", "Everyday", "Untold", "Smart", "Lost", "Little"),
        noun=("Podcast", "Episodes", "Show", "Hour", "Stories", "Mysteries", "Minds", "Facts", "Files", "Cast"),
        tags=("podcast", "episode", "storytelling", "science", "comedy", "true-crime", "hosts", "series"),
        phrases=("two hosts unpack a curious story", "a weekly episode about science and ideas",
                 "a true-crime investigation in several parts", "comedians riff on everyday life",
                 "an episode exploring a forgotten history", "a deep dive with an expert guest")),
    "sports": dict(
        adj=("Northfield", "Riverton", "Lakeside", "Westport", "Eastvale", "Hillcrest", "Bayside", "Stonebridge",
             "Redwater", "Kingsbury"),
        noun=("Rovers", "United", "Eagles", "Lions", "Comets", "Wolves", "Rangers", "Falcons", "Titans", "Sharks"),
        tags=("football", "match", "live", "highlights", "league", "goals", "stadium", "cup"),
        phrases=("highlights from a league match", "a late goal decides a tense derby",
                 "live coverage from a packed stadium", "the cup final with extra time",
                 "fast counter-attacks and a penalty", "post-match analysis of every goal")),
    "cartoons": dict(
        adj=("Super", "Silly", "Tiny", "Magic", "Crazy", "Jolly", "Zippy", "Wacky", "Bouncy", "Cosmic"),
        noun=("Critters", "Pals", "Robots", "Pirates", "Bunnies", "Heroes", "Gang", "Squad", "Monsters", "Ducks"),
        tags=("animation", "animated", "comedy", "colourful", "slapstick", "characters", "funny", "toons"),
        phrases=("an animated comedy full of slapstick", "colourful characters on a wild adventure",
                 "a cartoon chase with plenty of pratfalls", "zany heroes save the day again",
                 "a fast-paced animated episode", "bright toons and silly gags")),
    "drama": dict(
        adj=("Silent", "Broken", "Hidden", "Last", "Cold", "Distant", "Secret", "Fading", "Bitter", "Long"),
        noun=("Promise", "Winter", "House", "Letters", "Shadows", "Summer", "Truth", "Return", "Inheritance",
              "Confession"),
        tags=("drama", "series", "family", "romance", "period", "thriller", "character", "emotional"),
        phrases=("a family torn apart by a secret", "a slow-burning period drama",
                 "a tense story of loyalty and betrayal", "an emotional portrait of a marriage",
                 "quiet rooms and long silences", "a character drama set in a small town")),
    "nature": dict(
        adj=("Wild", "Hidden", "Frozen", "Living", "Blue", "Green", "Ancient", "Untamed", "Secret", "Deep"),
        noun=("Forest", "Ocean", "Planet", "Islands", "Valley", "Rivers", "Savanna", "Reef", "Mountains", "Wetlands"),
        tags=("wildlife", "nature", "animals", "landscape", "ocean", "forest", "birds", "planet"),
        phrases=("wildlife in a remote forest", "whales and dolphins of the open ocean",
                 "birds return to the wetlands in spring", "a year in the life of a mountain valley",
                 "predators and prey on the savanna", "the hidden life of a coral reef")),
    "documentary": dict(
        adj=("Untold", "Inside", "Lost", "Modern", "Secret", "Great", "Forgotten", "Real", "Hidden", "Rising"),
        noun=("History", "Empire", "Cities", "Machines", "Story", "Frontier", "Century", "Inventors", "Archive",
              "Journey"),
        tags=("documentary", "history", "science", "investigation", "biography", "factual", "archive", "society"),
        phrases=("archive footage tells the story of an empire", "an investigation into a forgotten scandal",
                 "the engineers who built modern cities", "a biography of an unlikely inventor",
                 "how science changed the last century", "interviews and archive film about a lost era")),
    "kids": dict(
        adj=("Happy", "Little", "Sunny", "Busy", "Friendly", "Rainbow", "Tiny", "Clever", "Cheerful", "Playful"),
        noun=("Friends", "Garden", "School", "Farm", "Train", "Songs", "Town", "Club", "Adventures", "Playtime"),
        tags=("kids", "family", "preschool", "learning", "songs", "educational", "fun", "children"),
        phrases=("songs and games for young children", "friendly characters learn to share",
                 "a gentle story for preschoolers", "counting and colours with puppets",
                 "a playful adventure on the farm", "learning the alphabet with songs")),
}
_GENERIC_SENTENCES = (
    "A fan favourite.", "New this week.", "Recommended by our editors.", "A popular choice.",
    "Available in high quality.", "Part of a long-running collection.", "Perfect for a quiet evening.",
    "Loved by listeners and viewers alike.",
)
_KEYS = ("C major", "D minor", "E-flat major", "G minor", "A major", "F minor", "B-flat major", "E minor")
_SERIES_GENRES = frozenset({"cartoons", "drama", "nature", "documentary", "kids", "podcast", "talk"})


def _pick(rng: np.random.Generator, words: tuple[str, ...]) -> str:
    return words[int(rng.integers(len(words)))]


def _group_name(rng: np.random.Generator, genre: str) -> str:
    v = _VOCAB[genre]
    if genre == "sports":
        return f"The {_pick(rng, v['adj'])} Cup"
    return f"{_pick(rng, v['adj'])} {_pick(rng, v['noun'])}"


def _title(rng: np.random.Generator, genre: str, group: str, position: int) -> str:
    v = _VOCAB[genre]
    if genre == "classical":
        return f"{_pick(rng, v['noun'])} No. {int(rng.integers(1, 30))} in {_pick(rng, _KEYS)}"
    if genre == "sports":
        home, away = rng.choice(len(v["adj"]), 2, replace=False)
        return f"{v['adj'][home]} {_pick(rng, v['noun'])} vs {v['adj'][away]} {_pick(rng, v['noun'])}"
    if genre == "news":
        return f"{group}, Edition {position + 1}"
    if genre in _SERIES_GENRES:
        return f"{group}: Episode {position + 1}"
    suffix = _pick(rng, ("", "", "", " (Live)", " (Remix)", " Part II"))
    return f"{_pick(rng, v['adj'])} {_pick(rng, v['noun'])}{suffix}"


def _tags(rng: np.random.Generator, genre: str) -> tuple[str, ...]:
    pool = _VOCAB[genre]["tags"]
    chosen = [pool[i] for i in rng.choice(len(pool), int(rng.integers(2, 5)), replace=False)]
    if rng.random() < 0.15:
        chosen[-1] = _pick(rng, _VOCAB[_pick(rng, GENRES)]["tags"])
    return tuple(dict.fromkeys([genre, *chosen]))  # genre first, no duplicates


def _description(rng: np.random.Generator, genre: str, group: str) -> str:
    def phrase() -> str:
        source = genre if rng.random() < 0.75 else _pick(rng, GENRES)
        return _pick(rng, _VOCAB[source]["phrases"])

    first, second = phrase(), phrase()
    template = int(rng.integers(4))
    if template == 0:
        text = f"{first[0].upper()}{first[1:]}."
    elif template == 1:
        text = f"{first[0].upper()}{first[1:]}, with {second}."
    elif template == 2:
        text = f"Featuring {first} and {second}."
    else:
        text = f"Expect {first}."
    if rng.random() < 0.4:
        text += f" From {group}."
    elif rng.random() < 0.5:
        text += " " + _pick(rng, _GENERIC_SENTENCES)
    return text
