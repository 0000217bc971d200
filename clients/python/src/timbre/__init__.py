"""Python client for timbred, the timbre audio analysis daemon.

    from timbre import Client

    with Client("127.0.0.1:50051") as timbre:
        result = timbre.classify("song.flac")
        for prediction in result.predictions:
            print(prediction.model, prediction.labels[0].name)
        for similar in timbre.recommend([result_track_id], limit=5):
            print(similar.score, similar.track.path)

Results are the protocol's own messages (`timbre.pb`, generated from proto/ when the package
is built, with type stubs); errors are `TimbreError`, which carries the gRPC status code and
the daemon's message.
"""

from timbre.client import Client, History, Samples, TimbreError
from timbre.v1 import timbre_pb2 as pb

__all__ = ["Client", "History", "Samples", "TimbreError", "pb"]
