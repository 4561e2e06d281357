#!/usr/bin/env python3
"""Writes producer/config/default-site.json, Playlog's default site model, in eventsim's config format.

The model is authored here compactly (pages, and transition weights per source page) and expanded into
eventsim's verbose (page, method, status, auth, level) state machine. Edit this file, not the JSON, then run:
    python3 scripts/gen-default-site.py
Weights in a row are probabilities; whatever a row leaves below 1 is the chance that the session ends there.
"""
import json
import pathlib

# page -> (method, status). 3xx pages are redirects: the next request follows one second later.
PAGES = {
    "Home": ("GET", 200), "About": ("GET", 200), "Help": ("GET", 200), "Error": ("GET", 404),
    "Settings": ("GET", 200), "Save Settings": ("PUT", 307), "NextSong": ("PUT", 200),
    "Thumbs Up": ("PUT", 307), "Thumbs Down": ("PUT", 307), "Add to Playlist": ("PUT", 200),
    "Add Friend": ("PUT", 307), "Roll Advert": ("GET", 200), "Upgrade": ("GET", 200),
    "Submit Upgrade": ("PUT", 307), "Downgrade": ("GET", 200), "Submit Downgrade": ("PUT", 307),
    "Cancel": ("PUT", 307), "Cancellation Confirmation": ("GET", 200), "Logout": ("PUT", 307),
    "Login": ("PUT", 307), "Register": ("GET", 200), "Submit Registration": ("PUT", 307),
}

LOGGED_IN, LOGGED_OUT, GUEST, CANCELLED = "Logged In", "Logged Out", "Guest", "Cancelled"


def state(page, auth, level):
    method, status = PAGES[page]
    return {"page": page, "method": method, "status": status, "auth": auth, "level": level}


def logged_in_rows(level):
    """Transitions among the pages of a logged-in user at one level. Paid sessions run longer: fewer exits,
    more songs in a row, no adverts."""
    free = level == "free"
    song_loop = 0.72 if free else 0.86
    song = {
        "NextSong": song_loop, "Thumbs Up": 0.045, "Thumbs Down": 0.012, "Add to Playlist": 0.025,
        "Add Friend": 0.01, "Home": 0.035 if free else 0.025, "Help": 0.004, "Settings": 0.004,
        "Logout": 0.008 if free else 0.004, "Error": 0.001,
    }
    if free:
        song.update({"Roll Advert": 0.09, "Upgrade": 0.004})
    else:
        song.update({"Downgrade": 0.003})
    browse = {"NextSong": 0.6, "Home": 0.05, "About": 0.01, "Help": 0.02, "Settings": 0.03,
              "Logout": 0.02, "Error": 0.002, ("Upgrade" if free else "Downgrade"): 0.02}
    rows = {
        "NextSong": song,
        "Home": browse,
        "About": {"Home": 0.3, "NextSong": 0.4, "Help": 0.05, "Logout": 0.02, "Error": 0.002},
        "Help": {"Home": 0.3, "NextSong": 0.4, "About": 0.03, "Settings": 0.05, "Logout": 0.02, "Error": 0.002},
        "Error": {"Home": 0.5, "Help": 0.2, "NextSong": 0.2},
        "Settings": {"Save Settings": 0.35, "Home": 0.2, "NextSong": 0.25, "Cancel": 0.03 if free else 0.02,
                     "Help": 0.05, "Logout": 0.02},
        "Save Settings": {"Home": 0.4, "NextSong": 0.55},
        "Thumbs Up": {"NextSong": 0.9, "Home": 0.05},
        "Thumbs Down": {"NextSong": 0.85, "Home": 0.08},
        "Add to Playlist": {"NextSong": 0.9, "Home": 0.05},
        "Add Friend": {"NextSong": 0.85, "Home": 0.1},
    }
    if free:
        rows["Roll Advert"] = {"NextSong": 0.8, "Home": 0.08, "Upgrade": 0.02, "Logout": 0.01}
        rows["Upgrade"] = {"Submit Upgrade": 0.45, "Home": 0.3, "NextSong": 0.2}
    else:
        rows["Downgrade"] = {"Submit Downgrade": 0.3, "Home": 0.35, "NextSong": 0.3}
    rows["Cancel"] = {"Cancellation Confirmation": 1.0}
    return rows


def transitions():
    out = []

    def add(src, dst, p):
        out.append({"source": src, "dest": dst, "p": p})

    for level in ("free", "paid"):
        other = "paid" if level == "free" else "free"
        for page, row in logged_in_rows(level).items():
            for dest, p in row.items():
                if dest == "Cancellation Confirmation":
                    add(state(page, LOGGED_IN, level), state(dest, CANCELLED, level), p)
                elif dest == "Logout":
                    add(state(page, LOGGED_IN, level), state(dest, LOGGED_IN, level), p)
                else:
                    add(state(page, LOGGED_IN, level), state(dest, LOGGED_IN, level), p)
        # The only level changes in the model: a Submit page leads to the other level.
        submit = "Submit Upgrade" if level == "free" else "Submit Downgrade"
        add(state(submit, LOGGED_IN, level), state("Home", LOGGED_IN, other), 0.6)
        add(state(submit, LOGGED_IN, level), state("NextSong", LOGGED_IN, other), 0.39)
        # Logging out, then browsing while logged out, then logging back in (or failing to).
        add(state("Logout", LOGGED_IN, level), state("Home", LOGGED_OUT, level), 0.9)
        for page, row in {
            "Home": {"Login": 0.5, "About": 0.05, "Help": 0.05, "Home": 0.05, "Error": 0.002},
            "About": {"Home": 0.5, "Login": 0.2, "Help": 0.05},
            "Help": {"Home": 0.5, "Login": 0.2, "About": 0.05},
            "Error": {"Home": 0.6, "Help": 0.1},
        }.items():
            for dest, p in row.items():
                add(state(page, LOGGED_OUT, level), state(dest, LOGGED_OUT, level), p)
        add(state("Login", LOGGED_OUT, level), state("Home", LOGGED_IN, level), 0.93)
        add(state("Login", LOGGED_OUT, level), state("NextSong", LOGGED_IN, level), 0.03)
        add(state("Login", LOGGED_OUT, level), state("Home", LOGGED_OUT, level), 0.04)  # failed login
    # Guests browse, register (becoming Logged In at the free level) or leave.
    for page, row in {
        "Home": {"Register": 0.25, "About": 0.1, "Help": 0.05, "Home": 0.1, "Error": 0.002},
        "About": {"Home": 0.3, "Register": 0.1, "Help": 0.05},
        "Help": {"Home": 0.2, "Register": 0.05, "About": 0.02},
        "Register": {"Home": 0.1, "Help": 0.02},
        "Error": {"Home": 0.5, "Help": 0.05},
    }.items():
        for dest, p in row.items():
            add(state(page, GUEST, "free"), state(dest, GUEST, "free"), p)
    add(state("Register", GUEST, "free"), state("Submit Registration", GUEST, "free"), 0.75)
    add(state("Submit Registration", GUEST, "free"), state("Home", LOGGED_IN, "free"), 0.97)
    add(state("Submit Registration", GUEST, "free"), state("Error", GUEST, "free"), 0.03)
    return out


def new_session():
    rows = []
    for level, song_weight in (("free", 1500), ("paid", 1750)):
        for page, w in (("Home", 1000), ("NextSong", song_weight), ("About", 5), ("Help", 10), ("Error", 1)):
            rows.append({**state(page, LOGGED_IN, level), "weight": w})
        for page, w in (("Home", 1000), ("Login", 500), ("About", 10), ("Help", 10), ("Error", 1)):
            rows.append({**state(page, LOGGED_OUT, level), "weight": w})
    for page, w in (("Home", 100), ("About", 20), ("Help", 10), ("Register", 30), ("Error", 5)):
        rows.append({**state(page, GUEST, "free"), "weight": w})
    return rows


config = {
    "seed": 1,
    "alpha": 60.0,
    "beta": 259200.0,
    "damping": 0.09375,
    "weekend-damping": 0.5,
    "weekend-damping-offset": 180,
    "weekend-damping-scale": 360,
    "session-gap": 1800,
    "churned-state": CANCELLED,
    "show-user-details": [
        {"auth": GUEST, "show": False}, {"auth": LOGGED_IN, "show": True},
        {"auth": LOGGED_OUT, "show": False}, {"auth": CANCELLED, "show": True},
    ],
    "levels": [{"level": "free", "weight": 10}, {"level": "paid", "weight": 4}],
    "auths": [{"auth": GUEST, "weight": 0}, {"auth": LOGGED_IN, "weight": 10}, {"auth": LOGGED_OUT, "weight": 1}],
    "new-session": new_session(),
    "new-user-auth": GUEST,
    "new-user-level": "free",
    "transitions": transitions(),
}

# Sanity: no row may sum past 1.
totals = {}
for t in config["transitions"]:
    key = json.dumps(t["source"], sort_keys=True)
    totals[key] = totals.get(key, 0) + t["p"]
bad = {k: v for k, v in totals.items() if v > 1.0 + 1e-9}
assert not bad, bad

out = pathlib.Path(__file__).resolve().parent.parent / "producer" / "config" / "default-site.json"
out.write_text(json.dumps(config, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
print(f"wrote {out} ({len(config['transitions'])} transitions)")
