"""Optional per-episode rosbag2 (MCAP) with the pure-Python `rosbags` writer.

Each episode is written into `.inflight/<name>/` and renamed to `<name>/` when it is closed, so a crash leaves at
most the in-flight episode's folder, which `remove_inflight_bags` deletes on the next start. rclpy messages are
converted field by field to the rosbags ROS 2 Jazzy type store's classes and serialized by rosbags (CDR): rclpy's
own serialization leaves padding bytes that strict CDR readers reject.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

INFLIGHT_DIR = ".inflight"
_TYPESTORE = get_typestore(Stores.ROS2_JAZZY)
_NUMPY = {
    "double": np.float64, "float": np.float32, "int8": np.int8, "uint8": np.uint8, "int16": np.int16,
    "uint16": np.uint16, "int32": np.int32, "uint32": np.uint32, "int64": np.int64, "uint64": np.uint64,
}  # fmt: skip


def _type_name(rclpy_type: str) -> str:
    package, name = rclpy_type.split("/")
    return f"{package}/msg/{name}"


def to_rosbags(message: object, msgtype: str) -> object:
    """An rclpy message as an instance of the rosbags type store class `msgtype` (e.g. 'sensor_msgs/msg/JointState')."""
    values = {}
    for name, kind in message.get_fields_and_field_types().items():
        value = getattr(message, name)
        inner = kind.removeprefix("sequence<").split(",")[0].rstrip(">") if kind.startswith("sequence<") else None
        if inner is None and "[" in kind:
            inner = kind.split("[")[0]
        if inner is not None:
            if inner in _NUMPY:
                values[name] = np.asarray(value, dtype=_NUMPY[inner])
            elif "/" in inner:
                values[name] = [to_rosbags(item, _type_name(inner)) for item in value]
            else:
                values[name] = list(value)
        elif "/" in kind:
            values[name] = to_rosbags(value, _type_name(kind))
        else:
            values[name] = value
    return _TYPESTORE.types[msgtype](**values)


def remove_inflight_bags(directory: str | Path) -> list[Path]:
    """Delete bag folders left by a killed recorder; return what was removed."""
    removed = []
    for path in (Path(directory) / INFLIGHT_DIR).glob("*"):
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


class EpisodeBag:
    """One episode's bag. topics: topic name -> ROS type name (e.g. 'sensor_msgs/msg/JointState')."""

    def __init__(self, directory: str | Path, name: str, topics: dict[str, str]) -> None:
        self.final_path = Path(directory) / name
        self.path = Path(directory) / INFLIGHT_DIR / name
        self.path.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.path, ignore_errors=True)
        self.writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        self.writer.open()
        self.topics = dict(topics)
        self.connections = {
            topic: self.writer.add_connection(topic, msgtype, typestore=_TYPESTORE) for topic, msgtype in topics.items()
        }

    def write(self, topic: str, message: object, stamp_ns: int) -> None:
        """Record an rclpy message on one of the bag's topics."""
        msgtype = self.topics[topic]
        data = _TYPESTORE.serialize_cdr(to_rosbags(message, msgtype), msgtype)
        self.writer.write(self.connections[topic], stamp_ns, data)

    def close(self) -> Path:
        """Finish the bag and move it to its final name (replacing an older bag of the same episode)."""
        self.writer.close()
        shutil.rmtree(self.final_path, ignore_errors=True)
        self.path.rename(self.final_path)
        return self.final_path
