"""Following a growing file: whole lines only, odd chunks, a file created late."""

from __future__ import annotations

from pathlib import Path

from pingpong.running.follow import FileFollower


def test_file_created_late_and_written_in_odd_chunks(tmp_path: Path) -> None:
    path = tmp_path / "server.log"
    follower = FileFollower(path)
    assert follower.read() == []  # does not exist yet
    with open(path, "ab", buffering=0) as file:
        assert follower.read() == []
        file.write("2026-11-26;13:01:03.100;[5] PING;(проиг".encode())
        assert follower.read() == []  # half a line waits
        file.write("норировано);(проигнорировано)\n[1".encode())
        assert follower.read() == [
            "2026-11-26;13:01:03.100;[5] PING;(проигнорировано);(проигнорировано)"
        ]
        file.write(b"] a\nb\nc\n")
        assert follower.read() == ["[1] a", "b", "c"]
        # A multi-byte character cut between two writes still decodes whole.
        data = "é\n".encode()
        file.write(data[:1])
        assert follower.read() == []
        file.write(data[1:])
        assert follower.read() == ["é"]
    follower.close()


def test_read_is_bounded_per_call(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    path.write_bytes(b"x" * 99 + b"\n" + b"y" * 99 + b"\n")
    follower = FileFollower(path, max_bytes=150)
    assert follower.read() == ["x" * 99]
    assert follower.read() == ["y" * 99]
    assert follower.read() == []
    follower.close()


def test_close_then_read_resumes_where_it_stopped(tmp_path: Path) -> None:
    path = tmp_path / "server.out"
    path.write_text("listening on 127.0.0.1:1\n")
    follower = FileFollower(path)
    assert follower.read() == ["listening on 127.0.0.1:1"]
    follower.close()
    assert follower.read() == []  # not the same line again
    with open(path, "a") as file:
        file.write("client 1 connected from x\n")
    assert follower.read() == ["client 1 connected from x"]
    follower.close()
