"""A real IMAP4rev1 server for tests: asyncio on 127.0.0.1 and a free port, one mailbox in memory.

Enough of RFC 3501 for a client that polls a bounce mailbox: CAPABILITY, LOGIN, SELECT/EXAMINE,
SEARCH (ALL, UNSEEN, SEEN, DELETED), FETCH (RFC822 — which sets \\Seen, as real servers do —,
BODY[], BODY.PEEK[], FLAGS), STORE ±FLAGS, EXPUNGE, CLOSE, NOOP, LOGOUT. Sequence numbers only.

    with IMAPServer(user="bounces", password="pw") as server:
        server.add(raw_bytes)            # a message, unseen
        server.messages                  # [Stored(raw, flags)], what is left after EXPUNGE
        server.log                       # every command line received (passwords masked)
"""
from __future__ import annotations

import asyncio
import re
import threading
from dataclasses import dataclass, field

from tests.smtp_server import free_port


@dataclass
class Stored:
    raw: bytes
    flags: set[str] = field(default_factory=set)


_TOKEN = re.compile(rb'"((?:[^"\\]|\\.)*)"|\(([^)]*)\)|(\S+)')


def _arguments(text: bytes) -> list[bytes]:
    """Split IMAP arguments: quoted strings (unescaped), parenthesised lists (kept whole) and atoms."""
    found = []
    for quoted, listed, atom in _TOKEN.findall(text):
        if quoted or (not listed and not atom):
            found.append(re.sub(rb"\\(.)", rb"\1", quoted))
        elif listed:
            found.append(b"(" + listed + b")")
        else:
            found.append(atom)
    return found


def _numbers(spec: bytes, count: int) -> list[int]:
    """A sequence set such as 1,3:5 or 2:* as 1-based numbers that exist."""
    chosen: list[int] = []
    for part in spec.split(b","):
        low, _, high = part.partition(b":")
        start = count if low == b"*" else int(low)
        end = start if not high else (count if high == b"*" else int(high))
        chosen.extend(n for n in range(min(start, end), max(start, end) + 1) if 1 <= n <= count)
    return chosen


class Session:
    def __init__(self, server: "IMAPServer", reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.server, self.reader, self.writer = server, reader, writer
        self.signed_in = False
        self.selected = False

    def send(self, line: bytes | str) -> None:
        self.writer.write((line.encode() if isinstance(line, str) else line) + b"\r\n")

    async def run(self) -> None:
        self.send("* OK [CAPABILITY IMAP4rev1] Test IMAP server ready")
        await self.writer.drain()
        try:
            while True:
                line = await self.reader.readline()
                if not line:
                    break
                line = line.rstrip(b"\r\n")
                tag, _, rest = line.partition(b" ")
                command, _, args = rest.partition(b" ")
                command = command.upper()
                self.server.log.append((tag + b" " + command + (b" ********" if command == b"LOGIN" else b" " + args)).decode())
                if command == b"UID":
                    self.send(tag + b" BAD UID commands are not supported here")
                else:
                    handler = getattr(self, "do_" + command.decode("ascii", "replace").lower(), None)
                    if handler is None:
                        self.send(tag + b" BAD Unknown command")
                    elif command not in (b"CAPABILITY", b"NOOP", b"LOGOUT", b"LOGIN") and not self.signed_in:
                        self.send(tag + b" NO Sign in first")
                    elif command in (b"SEARCH", b"FETCH", b"STORE", b"EXPUNGE", b"CLOSE") and not self.selected:
                        self.send(tag + b" BAD Select a mailbox first")
                    else:
                        with self.server.lock:
                            done = handler(tag, args)
                        if done:
                            await self.writer.drain()
                            break
                await self.writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.writer.close()

    # -- commands ---------------------------------------------------------------------------------

    def do_capability(self, tag, _args):
        self.send("* CAPABILITY IMAP4rev1")
        self.send(tag + b" OK CAPABILITY completed")

    def do_noop(self, tag, _args):
        self.send(tag + b" OK NOOP completed")

    def do_logout(self, tag, _args):
        self.send("* BYE Logging out")
        self.send(tag + b" OK LOGOUT completed")
        return True

    def do_login(self, tag, args):
        user, password = (_arguments(args) + [b"", b""])[:2]
        if (user.decode(), password.decode()) == (self.server.user, self.server.password):
            self.signed_in = True
            self.send(tag + b" OK [CAPABILITY IMAP4rev1] LOGIN completed")
        else:
            self.send(tag + b" NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)")

    def do_select(self, tag, args, readonly=False):
        [name] = _arguments(args)[:1] or [b""]
        if name.decode().upper() != self.server.folder.upper():
            self.selected = False
            self.send(tag + b" NO [NONEXISTENT] Unknown Mailbox: " + name)
            return
        self.selected = True
        messages = self.server.messages
        self.send(r"* FLAGS (\Answered \Flagged \Deleted \Seen \Draft)")
        self.send(f"* {len(messages)} EXISTS")
        self.send("* 0 RECENT")
        unseen = [i for i, m in enumerate(messages, 1) if "\\Seen" not in m.flags]
        if unseen:
            self.send(f"* OK [UNSEEN {unseen[0]}] First unseen")
        self.send(tag + (b" OK [READ-ONLY] EXAMINE completed" if readonly else b" OK [READ-WRITE] SELECT completed"))

    def do_examine(self, tag, args):
        self.do_select(tag, args, readonly=True)

    def do_search(self, tag, args):
        keys = args.upper().split()
        chosen = []
        for number, message in enumerate(self.server.messages, 1):
            if all((key == b"ALL") or (key == b"UNSEEN" and "\\Seen" not in message.flags)
                   or (key == b"SEEN" and "\\Seen" in message.flags)
                   or (key == b"DELETED" and "\\Deleted" in message.flags) for key in keys):
                chosen.append(str(number))
        self.send("* SEARCH" + "".join(" " + n for n in chosen))
        self.send(tag + b" OK SEARCH completed")

    def do_fetch(self, tag, args):
        spec, _, items = args.partition(b" ")
        items = items.upper().strip(b"()")
        for number in _numbers(spec, len(self.server.messages)):
            message = self.server.messages[number - 1]
            parts = []
            if b"RFC822" in items.split() or b"BODY[]" in items.split():
                message.flags.add("\\Seen")  # reading the body marks it seen, as real servers do
            if b"FLAGS" in items.split():
                parts.append(b"FLAGS (" + " ".join(sorted(message.flags)).encode() + b")")
            for item, name in ((b"RFC822", b"RFC822"), (b"BODY[]", b"BODY[]"), (b"BODY.PEEK[]", b"BODY[]")):
                if item in items.split():
                    parts.append(name + b" {" + str(len(message.raw)).encode() + b"}\r\n" + message.raw)
            self.send(f"* {number} FETCH (".encode() + b" ".join(parts) + b")")
        self.send(tag + b" OK FETCH completed")

    def do_store(self, tag, args):
        spec, how, flags = (args.split(b" ", 2) + [b"", b""])[:3]
        chosen = {f.decode() for f in flags.strip(b"()").split()}
        for number in _numbers(spec, len(self.server.messages)):
            message = self.server.messages[number - 1]
            if how.upper().startswith(b"+FLAGS"):
                message.flags |= chosen
            elif how.upper().startswith(b"-FLAGS"):
                message.flags -= chosen
            else:
                message.flags = set(chosen)
            if not how.upper().endswith(b".SILENT"):
                self.send(f"* {number} FETCH (FLAGS ({' '.join(sorted(message.flags))}))")
        self.send(tag + b" OK STORE completed")

    def _expunge(self, announce: bool) -> None:
        messages = self.server.messages
        for number in range(len(messages), 0, -1):
            if "\\Deleted" in messages[number - 1].flags:
                del messages[number - 1]
                if announce:
                    self.send(f"* {number} EXPUNGE")

    def do_expunge(self, tag, _args):
        self._expunge(True)
        self.send(tag + b" OK EXPUNGE completed")

    def do_close(self, tag, _args):
        self._expunge(False)
        self.selected = False
        self.send(tag + b" OK CLOSE completed")


class IMAPServer:
    """The server, run by its own event loop in a thread while the `with` block lasts."""

    def __init__(self, user: str = "bounces@teahouse.example", password: str = "imap-secret", folder: str = "INBOX"):
        self.user, self.password, self.folder = user, password, folder
        self.port = free_port()
        self.messages: list[Stored] = []
        self.log: list[str] = []
        self.lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="imap-server", daemon=True)
        self._server: asyncio.base_events.Server | None = None

    def add(self, raw: bytes, flags: set[str] | None = None) -> None:
        with self.lock:
            self.messages.append(Stored(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"), set(flags or ())))

    def settings(self) -> dict:
        """The Settings → Email form fields that point the CRM at this server."""
        return {"imap_host": "127.0.0.1", "imap_port": str(self.port), "imap_security": "none",
                "imap_username": self.user, "imap_password": self.password, "imap_folder": self.folder}

    async def _handle(self, reader, writer):
        await Session(self, reader, writer).run()

    def __enter__(self) -> "IMAPServer":
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", self.port), self._loop).result(10)
        return self

    def __exit__(self, *exc) -> None:
        async def stop():
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
