"""A sideband peer in another language, written from protos/README.md alone.

usage: sideband_client.py MODE SOCKET [FILE]
  hello      connect, print "HELLO <channel id>" or "EOF" if the connection closes first
  send-file  after HELLO, pass FILE (read-only) as a FILE transfer; print "SENT <channel> <token>"
  recv-file  after HELLO (printed), receive one transfer and print "GOT <token> <kinds> <content of fd 0>"
"""
import os
import socket
import sys

mode, path = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.settimeout(20)
s.connect(path)
msg, fds, flags, _ = socket.recv_fds(s, 24 + 64 + 1, 64, socket.MSG_CMSG_CLOEXEC)
if not msg:
    print("EOF", flush=True)
    sys.exit(0)
if len(msg) != 24 or msg[:4] != b"GBFD" or msg[4] != 1 or msg[5] != 1 or msg[6:8] != b"\0\0" or fds or flags:
    print("BAD " + msg.hex(), flush=True)
    sys.exit(1)
channel = msg[8:24].hex()

if mode == "hello":
    print("HELLO " + channel, flush=True)
elif mode == "send-file":
    fd = os.open(sys.argv[3], os.O_RDONLY)
    token = os.urandom(16)
    header = b"GBFD" + bytes([1, 2]) + (1).to_bytes(2, "little") + token + bytes([1])
    socket.send_fds(s, [header], [fd])
    os.close(fd)
    print("SENT " + channel + " " + token.hex(), flush=True)
elif mode == "recv-file":
    print("HELLO " + channel, flush=True)
    msg, fds, flags, _ = socket.recv_fds(s, 24 + 64 + 1, 64, socket.MSG_CMSG_CLOEXEC)
    count = int.from_bytes(msg[6:8], "little")
    if msg[:6] != b"GBFD\x01\x02" or len(msg) != 24 + count or len(fds) != count or flags:
        print("BAD " + msg.hex(), flush=True)
        sys.exit(1)
    content = os.pread(fds[0], 4096, 0).decode()
    for fd in fds:
        os.close(fd)
    print("GOT " + msg[8:24].hex() + " " + msg[24:].hex() + " " + content, flush=True)
else:
    sys.exit("unknown mode " + mode)
