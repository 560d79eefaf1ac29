"""A minimal HTTP/2 client for tests/hostile: enough to send gRPC requests
with raw protobuf bytes (including bytes no gRPC client would send), keep
streams open without reading them, and count finished streams. It encodes
HPACK literals only and never decodes HPACK (statuses are checked with the
real grpcurl instead). Loopback only; every wait is bounded."""
import select
import socket
import struct
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 3, 4, 6, 7, 8
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def _int(value, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _literal(name, value):
    # Literal header field without indexing, new name, no Huffman.
    return b"\x00" + _int(len(name), 7) + name + _int(len(value), 7) + value


def grpc_headers(path, authority=b"127.0.0.1"):
    fields = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", path),
              (b":authority", authority), (b"content-type", b"application/grpc"),
              (b"te", b"trailers")]
    return b"".join(_literal(n, v) for n, v in fields)


def pb_bytes(field, data):
    """One length-delimited protobuf field."""
    tag = (field << 3) | 2
    out, n = bytearray([tag]), len(data)
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out) + data


class Connection:
    def __init__(self, port, rcvbuf=None, host="127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(5)
        self.sock.connect((host, port))
        self.next_stream = 1
        self.finished = set()
        self.closed = False
        self._buf = b""
        # Big windows: responses never wait for our WINDOW_UPDATEs.
        settings = struct.pack(">HI", 0x4, 1 << 24)  # INITIAL_WINDOW_SIZE
        self.sock.sendall(PREFACE + frame(SETTINGS, 0, 0, settings) +
                          frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", (1 << 30))))

    def call(self, path, message, end=True):
        """Starts a gRPC call with `message` (raw protobuf bytes); returns its stream id."""
        sid = self.next_stream
        self.next_stream += 2
        body = b"\x00" + struct.pack(">I", len(message)) + message
        self.sock.sendall(frame(HEADERS, END_HEADERS, sid, grpc_headers(path)) +
                          frame(DATA, END_STREAM if end else 0, sid, body))
        return sid

    def pump(self, seconds):
        """Reads and answers frames for up to `seconds`; records finished streams."""
        end = time.time() + seconds
        while not self.closed and time.time() < end:
            r, _, _ = select.select([self.sock], [], [], max(0, min(0.05, end - time.time())))
            if not r:
                continue
            try:
                chunk = self.sock.recv(1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                self.closed = True
                break
            self._buf += chunk
            while len(self._buf) >= 9:
                length = int.from_bytes(self._buf[:3], "big")
                if len(self._buf) < 9 + length:
                    break
                kind, flags = self._buf[3], self._buf[4]
                sid = int.from_bytes(self._buf[5:9], "big") & 0x7FFFFFFF
                payload = self._buf[9:9 + length]
                self._buf = self._buf[9 + length:]
                if kind == SETTINGS and not flags & ACK:
                    self.sock.sendall(frame(SETTINGS, ACK, 0))
                elif kind == PING and not flags & ACK:
                    self.sock.sendall(frame(PING, ACK, 0, payload))
                elif kind in (HEADERS, DATA) and flags & END_STREAM or kind == RST_STREAM:
                    self.finished.add(sid)
                elif kind == GOAWAY:
                    self.closed = True

    def wait_finished(self, sids, seconds):
        end = time.time() + seconds
        while not set(sids) <= self.finished and not self.closed and time.time() < end:
            self.pump(0.1)
        return set(sids) <= self.finished

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
