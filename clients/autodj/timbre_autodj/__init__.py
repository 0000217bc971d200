"""An MPD auto-DJ on timbred.

It follows MPD's player (idle `player` events) and, each time the song changes, records the
song that was playing in timbred's listening history (`RecordListen`): how long it played and
whether it was skipped (left more than a few seconds before its end). When fewer than
`low_water` songs are left after the current one, it appends tracks recommended from the recent
history: like what was played through, unlike what was skipped, nothing played within the
window, no artist twice in a row.

MPD names songs relative to its music directory; timbred names tracks by absolute path. The
two are mapped through `music_dir` (MPD's `music_directory`, which must be the folder timbred
sees, or a copy with the same layout).

Both connections are retried with back-off (1 s, doubling, up to 30 s): the DJ survives MPD or
timbred restarting; listens recorded while timbred is away are sent when it is back.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import grpc
from mpd import MPDClient
from mpd import CommandError, ConnectionError as MPDConnectionError

from timbre import Client, History, TimbreError

log = logging.getLogger("timbre-autodj")

#: A song left this many seconds (or more) before its end was skipped.
SKIP_MARGIN_S = 5.0


@dataclass
class Playing:
    """The song MPD is playing, and how long it has played so far."""

    file: str
    song_id: str
    duration_s: float
    artist: str
    played_s: float = 0.0
    since: Optional[float] = None  # monotonic time it (re)started playing; None while paused
    started_at: float = field(default_factory=time.time)

    def elapsed(self, now: float) -> float:
        return self.played_s + (now - self.since if self.since is not None else 0.0)


@dataclass
class Listen:
    """A song that stopped playing: what is sent to timbred."""

    path: str
    started_at: float
    played_s: float
    skipped: bool


class AutoDJ:
    def __init__(
        self,
        music_dir: str,
        *,
        mpd_host: str = "localhost",
        mpd_port: int = 6600,
        timbre_address: str = "127.0.0.1:50051",
        low_water: int = 2,
        batch: int = 3,
        window_s: float = 3 * 3600.0,
        model: str = "",
        on_listen: Optional[Callable[[Listen], None]] = None,
        on_queue: Optional[Callable[[list[str]], None]] = None,
    ):
        self.music_dir = os.path.realpath(music_dir)
        self.mpd_host, self.mpd_port = mpd_host, mpd_port
        self.timbre = Client(timbre_address, timeout=30.0)
        self.low_water, self.batch, self.window_s, self.model = low_water, batch, window_s, model
        self.on_listen, self.on_queue = on_listen, on_queue
        self.playing: Optional[Playing] = None
        self.pending: list[Listen] = []  # not yet accepted by timbred
        self.queued: dict[str, float] = {}  # MPD file -> when the DJ queued it (no repeats)
        self.recent_plays: list[str] = []  # library paths played through, latest last
        self.stopping = False

    # -- paths ---------------------------------------------------------------------------------

    def library_path(self, mpd_file: str) -> str:
        return os.path.join(self.music_dir, mpd_file)

    def mpd_file(self, library_path: str) -> Optional[str]:
        """The MPD name of a library track, None when it lies outside MPD's music directory."""
        relative = os.path.relpath(os.path.realpath(library_path), self.music_dir)
        return None if relative.startswith("..") else relative

    # -- history -------------------------------------------------------------------------------

    def song_changed(self, client: MPDClient) -> None:
        """Reads MPD's status; when the song changed (or stopped), records the one that ended."""
        status = client.status()
        now = time.monotonic()
        song_id = status.get("songid")
        state = status.get("state")
        current = self.playing
        if current is not None and (song_id != current.song_id or state == "stop"):
            played = current.elapsed(now)
            # MPD's own clock for the song that ended is gone; ours counts play time only.
            skipped = current.duration_s <= 0 or played < current.duration_s - SKIP_MARGIN_S
            self.record(Listen(self.library_path(current.file), current.started_at, played, skipped))
            self.playing = current = None
        if song_id is not None and state != "stop" and current is None:
            song = client.currentsong()
            duration = float(status.get("duration") or song.get("duration") or song.get("time") or 0)
            elapsed = float(status.get("elapsed") or 0)
            current = self.playing = Playing(
                song["file"], song_id, duration, _first(song.get("artist", "")), played_s=elapsed,
                started_at=time.time() - elapsed,
            )
        if current is not None:
            if state == "play" and current.since is None:
                current.since = now
            elif state == "pause" and current.since is not None:
                current.played_s += now - current.since
                current.since = None

    def record(self, listen: Listen) -> None:
        log.info("%s %s after %.1f s", "skipped" if listen.skipped else "played", listen.path, listen.played_s)
        if not listen.skipped:
            self.recent_plays = [p for p in self.recent_plays if p != listen.path][-9:] + [listen.path]
        self.pending.append(listen)
        self.flush()
        if self.on_listen:
            self.on_listen(listen)

    def flush(self) -> None:
        """Sends the listens timbred has not accepted yet; keeps them when it is away."""
        while self.pending:
            listen = self.pending[0]
            try:
                self.timbre.record_listen(
                    listen.path, played_s=listen.played_s, skipped=listen.skipped, at=listen.started_at
                )
            except TimbreError as error:
                if error.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    log.warning("timbred is away, the listen is kept: %s", error.details)
                    return
                log.warning("listen not recorded: %s", error)
            self.pending.pop(0)

    # -- the queue -----------------------------------------------------------------------------

    def candidates(self, seeds: list[str], limit: int) -> list[tuple[str, str]]:
        """(MPD file, artist) of tracks recommended from `seeds` (library paths) and the history,
        best first, leaving out what the DJ queued within the window."""
        history = History(exclude_recent=True, recent_window_s=self.window_s, skips_as_negative=True, plays_as_positive=True)
        tracks = self.timbre.recommend(seeds, limit=limit * 4 + len(self.queued), model=self.model, history=history)
        cutoff = time.time() - self.window_s
        out = []
        for found in tracks:
            name = self.mpd_file(found.track.path)
            if name is None or self.queued.get(name, 0) > cutoff:
                continue
            out.append((name, found.track.tags.artist))
        return out

    def fill(self, client: MPDClient) -> list[str]:
        """Appends tracks when fewer than `low_water` are left after the current one."""
        status = client.status()
        queue = client.playlistinfo()
        position = int(status.get("song", -1))
        left = len(queue) - position - 1 if position >= 0 else len(queue)
        if left >= self.low_water or not queue and not self.recent_plays:
            return []
        seeds = [self.library_path(s["file"]) for s in queue[max(position, 0):][-2:]]
        seeds += [p for p in self.recent_plays[-3:] if p not in seeds]
        if not seeds:
            return []
        in_queue = {s["file"] for s in queue}
        last_artist = _first(queue[-1].get("artist", "")) if queue else ""
        added: list[str] = []
        for name, artist in self.candidates(seeds, self.batch):
            if len(added) == self.batch:
                break
            if name in in_queue or (artist and artist.casefold() == last_artist.casefold()):
                continue
            try:
                client.add(name)
            except CommandError as error:  # not in MPD's database (yet)
                log.warning("cannot queue %s: %s", name, error)
                continue
            added.append(name)
            in_queue.add(name)
            self.queued[name] = time.time()
            last_artist = artist
        if added:
            log.info("queued %s", ", ".join(added))
            if self.on_queue:
                self.on_queue(added)
        return added

    # -- the loop ------------------------------------------------------------------------------

    def run(self) -> None:
        """Follows MPD until `stop()`; reconnects with back-off when MPD or timbred goes away."""
        delay = 1.0
        while not self.stopping:
            client = MPDClient()
            client.timeout = 10
            client.idletimeout = 1.0  # wake now and then to see `stopping` and retry listens
            try:
                client.connect(self.mpd_host, self.mpd_port)
                log.info("connected to MPD at %s:%s", self.mpd_host, self.mpd_port)
                delay = 1.0
                self.song_changed(client)
                self.step(client)
                while not self.stopping:
                    try:
                        changes = client.idle("player", "playlist")
                    except OSError as error:  # the idle timeout: nothing happened
                        if "timed out" not in str(error):
                            raise
                        client.disconnect()
                        client.connect(self.mpd_host, self.mpd_port)
                        # A fresh connection has no pending events: look again.
                        changes = ["player"]
                    if "player" in changes:
                        self.song_changed(client)
                    self.step(client)
            except (MPDConnectionError, OSError) as error:
                if self.stopping:
                    break
                log.warning("MPD at %s:%s: %s; retrying in %.0f s", self.mpd_host, self.mpd_port, error, delay)
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
            finally:
                try:
                    client.disconnect()
                except Exception:
                    pass

    def step(self, client: MPDClient) -> None:
        """What follows each event: resend listens, top up the queue (timbred may be away)."""
        self.flush()
        try:
            self.fill(client)
        except TimbreError as error:
            log.warning("no recommendation now: %s", error)

    def stop(self) -> None:
        self.stopping = True


def _first(value) -> str:
    """MPD gives a tag once as a string, several times as a list."""
    return value[0] if isinstance(value, list) else value


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="timbre-autodj", description=__doc__.split("\n\n")[0])
    parser.add_argument("--mpd", default="localhost:6600", help="MPD's HOST:PORT (default localhost:6600)")
    parser.add_argument("--timbre", default="127.0.0.1:50051", help="timbred's address")
    parser.add_argument("--music-dir", required=True, help="MPD's music_directory, as timbred sees it")
    parser.add_argument("--low-water", type=int, default=2, help="queue more when fewer songs are left")
    parser.add_argument("--batch", type=int, default=3, help="songs queued at a time")
    parser.add_argument("--window", type=float, default=3.0, help="hours within which nothing repeats")
    parser.add_argument("--model", default="", help="embedding space (default: timbred's)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="timbre-autodj: %(message)s")
    host, _, port = args.mpd.rpartition(":")
    dj = AutoDJ(
        args.music_dir,
        mpd_host=host or "localhost",
        mpd_port=int(port),
        timbre_address=args.timbre,
        low_water=args.low_water,
        batch=args.batch,
        window_s=args.window * 3600.0,
        model=args.model,
    )
    try:
        dj.run()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
