"""beets plugin: genre, mood, BPM and key from timbred, and similar items.

    plugins: timbre
    timbre:
        address: 127.0.0.1:50051

`beet timbre [QUERY]` asks the daemon about each matching item (the analysis it already has
for a file in its library, else the file uploaded and analysed on the fly) and stores the
fields in the beets database, and in the files when beets writes tags. `beet timbre-similar
QUERY` lists the items that sound most like the first match. See clients/beets/README.md.
"""

from __future__ import annotations

import os

from beets import ui
from beets.plugins import BeetsPlugin

import timbre

#: musicnn's MSD tags that describe a mood (the rest are genres, eras and instruments).
MOOD_TAGS = ["chill", "Mellow", "happy", "sad", "beautiful", "party", "sexy", "catchy", "easy listening"]


class TimbrePlugin(BeetsPlugin):
    def __init__(self):
        super().__init__()
        self.config.add(
            {
                "address": "127.0.0.1:50051",
                "token": "",
                "ca_cert": "",
                "overwrite": False,
                "auto": False,
                "genre": {"field": "genre", "model": "auto", "min_confidence": 0.4},
                "mood": {"field": "mood", "model": "musicnn-msd", "min_confidence": 0.3, "tags": MOOD_TAGS},
                "bpm": {"field": "bpm", "min_confidence": 0.0},
                "key": {"field": "initial_key", "min_confidence": 0.0},
                "similar": {"limit": 10},
            }
        )
        self.config["token"].redact = True
        if self.config["auto"].get(bool):
            self.import_stages = [self.imported]

    # -- commands ------------------------------------------------------------------------------

    def commands(self):
        analyse = ui.Subcommand("timbre", help="set genre, mood, BPM and key from timbred")
        analyse.parser.add_option("-f", "--force", action="store_true", help="replace values already set")
        analyse.parser.add_option("-p", "--pretend", action="store_true", help="show the values, change nothing")
        analyse.func = self.analyse_command
        similar = ui.Subcommand("timbre-similar", help="list the items that sound like the first match")
        similar.parser.add_option("-n", "--limit", type="int", help="how many (default: timbre.similar.limit)")
        similar.func = self.similar_command
        return [analyse, similar]

    def analyse_command(self, lib, opts, args):
        overwrite = opts.force or self.config["overwrite"].get(bool)
        write = ui.should_write()
        with self.client() as client:
            for item in lib.items(args):
                self.analyse(client, item, overwrite=overwrite, pretend=opts.pretend, write=write)

    def imported(self, session, task):
        with self.client() as client:
            for item in task.imported_items():
                self.analyse(client, item, overwrite=self.config["overwrite"].get(bool), pretend=False, write=False)

    def similar_command(self, lib, opts, args):
        items = list(lib.items(args))
        if not items:
            raise ui.UserError("timbre-similar: no item matches the query")
        seed = items[0]
        limit = opts.limit or self.config["similar"]["limit"].get(int)
        with self.client() as client:
            try:
                found = client.recommend(_path(seed), limit=limit)
            except timbre.TimbreError as error:
                raise ui.UserError(f"timbre-similar: {_path(seed)}: {error.details}")
        by_path = {_path(item): item for item in lib.items()}
        ui.print_(f"like {seed}:")
        for similar in found:
            item = by_path.get(similar.track.path)
            shown = str(item) if item is not None else f"{similar.track.path} (not in the beets library)"
            ui.print_(f"{similar.score:6.3f}  {shown}")

    # -- the work ------------------------------------------------------------------------------

    def client(self) -> timbre.Client:
        return timbre.Client(
            self.config["address"].as_str(),
            token=self.config["token"].as_str() or None,
            ca_cert=self.config["ca_cert"].as_str() or None,
        )

    def analyse(self, client, item, *, overwrite: bool, pretend: bool, write: bool) -> None:
        path = _path(item)
        try:
            predictions, descriptors = self.ask(client, path)
        except (timbre.TimbreError, OSError) as error:
            self._log.warning("{}: {}", path, getattr(error, "details", error))
            return
        values = self.values(predictions, descriptors)
        changed = []
        for field, value in values.items():
            old = item.get(field)
            if old not in (None, "", 0) and not overwrite:
                continue
            if old != value:
                changed.append((field, old, value))
                if not pretend:
                    item[field] = value
        for field, old, value in changed:
            ui.print_(f"{item}: {field}: {old!r} -> {value!r}")
        if changed and not pretend:
            item.store()
            if write:
                item.try_write()

    def ask(self, client, path: str):
        """The daemon's stored analysis for a file in its library, else the file analysed now."""
        try:
            track = client.track(path)
            if track.state == timbre.pb.ANALYSIS_STATE_ANALYSED:
                return list(track.predictions), _descriptors(track)
        except timbre.TimbreError as error:
            if error.code.name not in ("NOT_FOUND", "PERMISSION_DENIED", "INVALID_ARGUMENT"):
                raise
        response = client.classify(path)
        return list(response.predictions), _descriptors(response)

    def values(self, predictions, descriptors) -> dict:
        out = {}
        by_model = {p.model: p for p in predictions}
        genre = self.config["genre"]
        model = genre["model"].as_str()
        if model == "auto":
            # The genre head when the daemon has one, else its first model.
            model = "genre" if "genre" in by_model else (predictions[0].model if predictions else "")
        best = by_model[model].labels[0] if model in by_model and by_model[model].labels else None
        if best is not None and best.probability >= genre["min_confidence"].as_number():
            out[genre["field"].as_str()] = best.name.title() if best.name.islower() else best.name

        mood = self.config["mood"]
        tags = mood["tags"].as_str_seq()
        if mood["model"].as_str() in by_model:
            chosen = [
                l.name
                for l in by_model[mood["model"].as_str()].labels
                if l.name in tags and l.probability >= mood["min_confidence"].as_number()
            ]
            if chosen:
                out[mood["field"].as_str()] = ", ".join(chosen)

        if descriptors is not None:
            if descriptors.bpm > 0 and descriptors.bpm_confidence >= self.config["bpm"]["min_confidence"].as_number():
                out[self.config["bpm"]["field"].as_str()] = int(round(descriptors.bpm))
            if descriptors.key and descriptors.key_strength >= self.config["key"]["min_confidence"].as_number():
                out[self.config["key"]["field"].as_str()] = short_key(descriptors.key)
        return out


def _path(item) -> str:
    return os.path.abspath(os.fsdecode(item.path))


def _descriptors(message):
    """The message's descriptors (tempo, key, loudness) when this daemon's protocol has them."""
    if "descriptors" in message.DESCRIPTOR.fields_by_name and message.HasField("descriptors"):
        return message.descriptors
    return None


def short_key(key: str) -> str:
    """`A minor` → `Am`, `F# major` → `F#`: the notation beets' initial_key and players use."""
    parts = key.split()
    if len(parts) == 2 and parts[1].lower() == "minor":
        return parts[0] + "m"
    return parts[0] if parts else key
