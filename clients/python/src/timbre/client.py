"""`Client`: one channel to a timbred, one method per thing a program asks of it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Iterator, Optional, Sequence, Union

import grpc

from timbre.v1 import timbre_pb2 as pb
from timbre.v1 import timbre_pb2_grpc as pb_grpc

DEFAULT_ADDRESS = "127.0.0.1:50051"


class TimbreError(Exception):
    """A call the daemon refused or could not answer: its status code and its message."""

    def __init__(self, method: str, code: grpc.StatusCode, details: str):
        super().__init__(f"{method}: {code.name}: {details}")
        self.method = method
        self.code = code
        self.details = details


@dataclass(frozen=True)
class Samples:
    """Raw audio: float samples in [-1, 1], interleaved when there is more than one channel."""

    samples: Sequence[float]
    sample_rate: int
    channels: int = 1

    def to_pcm(self) -> pb.Pcm:
        values = self.samples.tolist() if hasattr(self.samples, "tolist") else list(self.samples)
        return pb.Pcm(samples=values, sample_rate=self.sample_rate, channels=self.channels)


@dataclass(frozen=True)
class History:
    """What a recommendation takes from the listening history; each part is off unless set.

    `exclude_recent` leaves out tracks played within `recent_window_s` seconds (default: the
    daemon's `recommend.recent_window_s`); `skips_as_negative` makes quickly skipped tracks
    negative examples; `plays_as_positive` makes tracks played through positive ones.
    """

    exclude_recent: bool = False
    recent_window_s: Optional[float] = None
    skips_as_negative: bool = False
    plays_as_positive: bool = False

    def to_proto(self) -> pb.HistoryOptions:
        options = pb.HistoryOptions(
            exclude_recent=self.exclude_recent,
            skips_as_negative=self.skips_as_negative,
            plays_as_positive=self.plays_as_positive,
        )
        if self.recent_window_s is not None:
            options.recent_window_s = self.recent_window_s
        return options


#: What can be classified: a file (read here and uploaded), its bytes, or samples.
Audio = Union[str, "os.PathLike[str]", bytes, Samples]
#: A recommendation example: a library track id, a library path, or audio analysed on the fly.
Example = Union[int, str, "os.PathLike[str]", bytes, Samples]


class Client:
    """A connection to timbred.

    `address` is `host:port`, `http://host:port` or `https://host:port` (TLS; `ca_cert` is a
    PEM file to trust instead of the system's roots). `token` (default: the `TIMBRE_TOKEN`
    environment variable) is sent as a bearer token, for daemons started with
    `--auth-token-file`. `timeout` is each call's deadline in seconds.
    """

    def __init__(
        self,
        address: str = DEFAULT_ADDRESS,
        *,
        token: Optional[str] = None,
        ca_cert: Optional[Union[str, "os.PathLike[str]"]] = None,
        timeout: float = 120.0,
    ):
        secure = address.startswith("https://")
        target = address.split("://", 1)[1] if "://" in address else address
        if secure:
            roots = open(ca_cert, "rb").read() if ca_cert else None
            self._channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=roots))
        elif ca_cert:
            raise ValueError("a CA certificate is for TLS: use an https:// address")
        else:
            self._channel = grpc.insecure_channel(target)
        token = token if token is not None else os.environ.get("TIMBRE_TOKEN")
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._stub = pb_grpc.TimbreStub(self._channel)
        self.timeout = timeout

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    # -- analysis ------------------------------------------------------------------------------

    def classify(
        self,
        audio: Audio,
        *,
        models: Iterable[str] = (),
        top_k: int = 0,
        include_segments: bool = False,
        on_server: bool = False,
    ) -> pb.ClassifyResponse:
        """Every model's labels for one piece of audio; nothing is stored.

        A path is read here and uploaded, so any file works; with `on_server=True` the daemon
        reads it instead, which it allows only under its library roots. `top_k` = 0 gives every
        label.
        """
        request = pb.ClassifyRequest(models=list(models), top_k=top_k, include_segments=include_segments)
        if isinstance(audio, Samples):
            request.pcm.CopyFrom(audio.to_pcm())
        elif isinstance(audio, (bytes, bytearray)):
            request.encoded = bytes(audio)
        elif on_server:
            request.path = os.path.abspath(audio)
        else:
            with open(audio, "rb") as file:
                request.encoded = file.read()
            request.filename_hint = os.path.basename(audio)
        return self._call("Classify", request)

    # -- recommendation ------------------------------------------------------------------------

    def recommend(
        self,
        positive: Union[Example, Iterable[Example]],
        negative: Iterable[Example] = (),
        *,
        limit: int = 10,
        model: str = "",
        diversity: float = 0.0,
        strategy: str = "",
        filter: Optional[pb.RecommendFilter] = None,
        history: Optional[History] = None,
    ) -> list[pb.RecommendedTrack]:
        """Library tracks like the positive examples and unlike the negative ones, best first.

        `strategy` is `"average"` or `"best"` (the daemon's default when empty); `model` picks
        the embedding space (the daemon's default when empty). `history` says what to take from
        the listening history (`record_listen`); with `History(plays_as_positive=True)`,
        `positive` may be empty.
        """
        strategies = {
            "": pb.RECOMMEND_STRATEGY_UNSPECIFIED,
            "average": pb.RECOMMEND_STRATEGY_AVERAGE_VECTOR,
            "best": pb.RECOMMEND_STRATEGY_BEST_SCORE,
        }
        if strategy not in strategies:
            raise ValueError(f"strategy must be one of {sorted(strategies)}, not {strategy!r}")
        request = pb.RecommendRequest(
            positive=[track_ref(e) for e in _examples(positive)],
            negative=[track_ref(e) for e in _examples(negative)],
            limit=limit,
            model=model,
            diversity=diversity,
            strategy=strategies[strategy],
            filter=filter,
            history=history.to_proto() if history else None,
        )
        return list(self._call("Recommend", request).tracks)

    def playlist(
        self,
        seed: Example,
        *,
        length: int = 20,
        model: str = "",
        no_repeat_artist: bool = False,
        filter: Optional[pb.RecommendFilter] = None,
        history: Optional[History] = None,
    ) -> list[pb.RecommendedTrack]:
        """A walk from `seed`: each track close to the previous one and to the seed, no repeats."""
        request = pb.PlaylistRequest(
            seed=track_ref(seed),
            length=length,
            model=model,
            no_repeat_artist=no_repeat_artist,
            filter=filter,
            history=history.to_proto() if history else None,
        )
        return list(self._call("Playlist", request).tracks)

    def path(
        self,
        start: Example,
        end: Example,
        *,
        length: int = 10,
        via: Iterable[Example] = (),
        model: str = "",
        no_repeat_artist: bool = False,
        filter: Optional[pb.RecommendFilter] = None,
    ) -> list[pb.RecommendedTrack]:
        """`length` tracks that lead from `start` to `end` (neither included) through the
        embedding space, each close to the previous one, optionally passing near `via`."""
        request = pb.PathRequest(
            length=length,
            model=model,
            no_repeat_artist=no_repeat_artist,
            filter=filter,
            waypoints=[track_ref(w) for w in _examples(via)],
        )
        # `from` is a Python keyword: set the field by name.
        getattr(request, "from").CopyFrom(track_ref(start))
        request.to.CopyFrom(track_ref(end))
        return list(self._call("Path", request).tracks)

    def record_listen(
        self,
        track: Union[int, str, "os.PathLike[str]"],
        *,
        played_s: float,
        skipped: bool = False,
        at: Optional[float] = None,
    ) -> pb.RecordListenResponse:
        """Records that a library track (id or path) was listened to for `played_s` seconds,
        started at `at` (Unix seconds; default: now), and whether it was skipped."""
        request = pb.RecordListenRequest(
            played_s=played_s, skipped=skipped, at_unix_ms=int(at * 1000) if at is not None else 0
        )
        if isinstance(track, int) and not isinstance(track, bool):
            request.track_id = track
        else:
            request.path = os.path.abspath(track)
        return self._call("RecordListen", request)

    # -- the library ---------------------------------------------------------------------------

    def scan(self, roots: Iterable[str] = (), *, full: bool = False) -> Iterator[pb.ScanProgress]:
        """Brings the library up to date; yields progress until the last message (`finished`)."""
        request = pb.ScanRequest(roots=[os.path.abspath(r) for r in roots], full=full)
        # A scan of a large library takes as long as it takes: no deadline on the stream.
        yield from self._stream("Scan", request, timeout=None)

    def tracks(
        self, *, genre: str = "", model: str = "", label: str = "", page_size: int = 100
    ) -> Iterator[pb.Track]:
        """Every track of the library (filtered by genre tag, or by a model's top label), page
        by page as the iteration goes."""
        token = ""
        while True:
            request = pb.ListTracksRequest(
                page_size=page_size, page_token=token, genre=genre, model=model, label=label
            )
            page = self._call("ListTracks", request)
            yield from page.tracks
            token = page.next_page_token
            if not token:
                return

    def track(self, track: Union[int, str, "os.PathLike[str]"]) -> pb.Track:
        """One library track by id or path, with every model's labels."""
        if isinstance(track, int):
            request = pb.GetTrackRequest(track_id=track)
        else:
            request = pb.GetTrackRequest(path=os.path.abspath(track))
        return self._call("GetTrack", request)

    def plugins(self) -> pb.ListPluginsResponse:
        """The plugins and model folders the daemon loaded, and those it refused."""
        return self._call("ListPlugins", pb.ListPluginsRequest())

    # -- plumbing ------------------------------------------------------------------------------

    def _call(self, method: str, request):
        try:
            return getattr(self._stub, method)(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            raise TimbreError(method, error.code(), error.details()) from None

    def _stream(self, method: str, request, timeout: Optional[float]):
        try:
            yield from getattr(self._stub, method)(request, timeout=timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            raise TimbreError(method, error.code(), error.details()) from None


def _examples(examples) -> list:
    """One example or several: a single id, path, bytes or Samples counts as one."""
    if isinstance(examples, (int, str, bytes, bytearray, Samples, os.PathLike)):
        return [examples]
    return list(examples)


def track_ref(example: Example) -> pb.TrackRef:
    """A track id, a library path, or audio (bytes or samples) analysed on the fly."""
    if isinstance(example, bool):
        raise TypeError("a track is an id, a path or audio, not a bool")
    if isinstance(example, int):
        return pb.TrackRef(track_id=example)
    if isinstance(example, (bytes, bytearray)):
        return pb.TrackRef(audio=pb.AudioInput(encoded=bytes(example)))
    if isinstance(example, Samples):
        return pb.TrackRef(audio=pb.AudioInput(pcm=example.to_pcm()))
    return pb.TrackRef(path=os.path.abspath(example))
