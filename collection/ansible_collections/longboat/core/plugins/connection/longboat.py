# -*- coding: utf-8 -*-
# Copyright: Longboat contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: longboat
short_description: Run tasks inside containers of a Longboat engine
version_added: 0.1.0
description:
  - Runs Ansible's commands in a running container through the engine's API (exec
    create and a hijacked exec start, stdout and stderr demultiplexed, the exit code from
    exec inspect), and copies files in and out with the archive endpoints
    (C(PUT)/C(GET /containers/{id}/archive)), so roles configure containers the way they
    configure hosts. No SSH, nothing installed in the container but a Python for modules.
  - The engine is reached from the controller (a local socket, or C(tcp://) with TLS).
author: Longboat contributors (@longboat)
options:
  remote_addr:
    description: The container's name or ID.
    type: str
    default: inventory_hostname
    vars:
      - name: inventory_hostname
      - name: ansible_host
      - name: ansible_longboat_container
  remote_user:
    description: The user commands run as in the container (the image's user when unset).
    type: str
    vars:
      - name: ansible_user
      - name: ansible_longboat_user
    keyword:
      - name: remote_user
  engine_host:
    description: The engine's API address.
    type: str
    default: unix:///run/longboat/longboat.sock
    env:
      - name: LONGBOAT_HOST
      - name: DOCKER_HOST
    vars:
      - name: ansible_longboat_engine_host
  tls_verify:
    description: Speak TLS to a C(tcp://) engine and verify its certificate against O(ca_path).
    type: bool
    default: false
    vars:
      - name: ansible_longboat_tls_verify
  ca_path:
    description: The CA certificate that signed the engine's certificate.
    type: path
    vars:
      - name: ansible_longboat_ca_path
  client_cert:
    description: The client certificate for mutual TLS.
    type: path
    vars:
      - name: ansible_longboat_client_cert
  client_key:
    description: The client certificate's key.
    type: path
    vars:
      - name: ansible_longboat_client_key
  timeout:
    description: Seconds to wait for the engine's answers (commands run as long as they take).
    type: int
    default: 60
    vars:
      - name: ansible_longboat_timeout
'''

EXAMPLES = r'''
# inventory: the containers are the hosts
# [web]
# web1 ansible_connection=longboat.core.longboat ansible_python_interpreter=/usr/bin/python3
- name: Configure a container as if it were a host
  hosts: web
  gather_facts: false
  tasks:
    - name: Write the config
      ansible.builtin.copy:
        content: "listen 80\n"
        dest: /etc/app.conf
        mode: "0644"
'''

import io
import os
import shutil
import tarfile
import tempfile

from ansible.errors import AnsibleConnectionFailure, AnsibleError, AnsibleFileNotFound
from ansible.module_utils.common.text.converters import to_bytes, to_native, to_text
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display

from ansible_collections.longboat.core.plugins.module_utils.api import (
    APIError, ClientError, TLSConfig)
from ansible_collections.longboat.core.plugins.module_utils.common import Engine
from ansible_collections.longboat.core.plugins.module_utils.execs import exec_run

display = Display()

MAX_LINKS = 8


class UnsafeArchive(AnsibleError):
    """A tar from the engine that tries to put something outside the wanted file."""


def copy_single_file(archive, name, out):
    """Copy the content of the regular file ``name`` in ``archive`` (a file object) to
    ``out``, refusing anything else: members with absolute or ``..`` paths, other names
    (they would land outside the destination), links, devices, sparse members (their
    size is whatever the header claims), several files."""
    with tarfile.open(fileobj=archive, mode="r|") as tar:
        found = False
        for member in tar:
            parts = member.name.replace("\\", "/").split("/")
            if member.name.startswith("/") or ".." in parts:
                raise UnsafeArchive("refusing archive member %r: it escapes the destination"
                                    % member.name)
            if member.name.rstrip("/") != name:
                raise UnsafeArchive("refusing archive member %r: only %r was asked for"
                                    % (member.name, name))
            if not member.isfile() or member.issparse():
                raise UnsafeArchive("refusing %r: not a regular file" % member.name)
            if found:
                raise UnsafeArchive("refusing an archive with %r twice" % name)
            shutil.copyfileobj(tar.extractfile(member), out)
            found = True
        if not found:
            raise UnsafeArchive("the engine's archive does not hold %r" % name)


def single_file(archive, name):
    """The content of the regular file ``name`` in ``archive`` (see copy_single_file)."""
    out = io.BytesIO()
    copy_single_file(archive, name, out)
    return out.getvalue()


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class Connection(ConnectionBase):
    """Tasks in a container, through the engine's API."""

    transport = "longboat.core.longboat"
    has_pipelining = True

    def __init__(self, play_context, new_stdin, *args, **kwargs):
        super(Connection, self).__init__(play_context, new_stdin, *args, **kwargs)
        self.engine = None
        self._ids = None

    def _container(self):
        return self.get_option("remote_addr")

    def _connect(self):
        if self._connected:
            return self
        host = self.get_option("engine_host")
        tls = None
        if self.get_option("tls_verify") or host.startswith("https://"):
            tls = TLSConfig(ca=self.get_option("ca_path"), cert=self.get_option("client_cert"),
                            key=self.get_option("client_key"),
                            verify=bool(self.get_option("tls_verify")))
        try:
            self.engine = Engine(host, tls=tls, timeout=self.get_option("timeout"),
                                 user_agent="ansible-longboat.core-connection")
            state = self.engine.inspect_container(self._container()).get("State") or {}
        except APIError as exc:
            raise AnsibleConnectionFailure("container %s: %s" % (self._container(), exc.message))
        except ClientError as exc:
            raise AnsibleConnectionFailure("engine %s: %s" % (host, exc.message))
        if not state.get("Running"):
            raise AnsibleConnectionFailure("container %s is not running (%s): start it first"
                                           % (self._container(), state.get("Status")))
        display.vvv("ESTABLISHED LONGBOAT CONNECTION to %s" % self._container(),
                    host=self._container())
        self._connected = True
        return self

    def _run(self, argv, in_data=None):
        try:
            return exec_run(self.engine, self._container(), argv, stdin=in_data,
                            user=self.get_option("remote_user"))
        except ClientError as exc:
            raise AnsibleConnectionFailure("exec in %s: %s" % (self._container(), exc.message))

    def exec_command(self, cmd, in_data=None, sudoable=False):
        super(Connection, self).exec_command(cmd, in_data=in_data, sudoable=sudoable)
        self._connect()
        executable = self._play_context.executable or "/bin/sh"
        argv = [executable, "-c", to_text(cmd, errors="surrogate_or_strict")]
        display.vvv("EXEC %s" % argv, host=self._container())
        return self._run(argv, in_data=to_bytes(in_data) if in_data is not None else None)

    def _owner(self):
        """uid and gid of the remote user in the container (files put there are theirs)."""
        if self._ids is None:
            self._ids = (0, 0)
            if self.get_option("remote_user"):
                code, out, _err = self._run(["/bin/sh", "-c", "id -u && id -g"])
                lines = out.split()
                if code == 0 and len(lines) == 2 and all(x.isdigit() for x in lines):
                    self._ids = (int(lines[0]), int(lines[1]))
        return self._ids

    def put_file(self, in_path, out_path):
        super(Connection, self).put_file(in_path, out_path)
        self._connect()
        display.vvv("PUT %s TO %s" % (in_path, out_path), host=self._container())
        if not os.path.isfile(to_bytes(in_path, errors="surrogate_or_strict")):
            raise AnsibleFileNotFound("file or module does not exist: %s" % to_native(in_path))
        out_path = self._prefix_login_path(out_path)
        directory, name = os.path.split(out_path)
        uid, gid = self._owner()
        with tempfile.TemporaryFile() as archive:
            with open(to_bytes(in_path, errors="surrogate_or_strict"), "rb") as f:
                # the member is made from the opened file: always a regular file of
                # exactly what is sent (gettarinfo would make a symlink member of a link)
                st = os.fstat(f.fileno())
                info = tarfile.TarInfo(name)
                info.size, info.mtime = st.st_size, int(st.st_mtime)
                info.uid, info.gid, info.uname, info.gname = uid, gid, "", ""
                info.mode = 0o600 if uid else 0o644
                with tarfile.open(fileobj=archive, mode="w") as tar:
                    tar.addfile(info, f)
            archive.seek(0)
            try:
                self.engine.put_archive(self._container(), directory or "/", archive)
            except ClientError as exc:
                raise AnsibleError("copying %s to %s in %s: %s"
                                   % (in_path, out_path, self._container(), exc.message))

    def _prefix_login_path(self, path):
        if not path.startswith("/"):
            path = os.path.join("/", path)
        return os.path.normpath(path)

    def fetch_file(self, in_path, out_path):
        super(Connection, self).fetch_file(in_path, out_path)
        self._connect()
        display.vvv("FETCH %s TO %s" % (in_path, out_path), host=self._container())
        path = self._prefix_login_path(in_path)
        try:
            for _hop in range(MAX_LINKS):
                stat = self.engine.archive_stat(self._container(), path)
                target = stat.get("linkTarget")
                if not target:
                    break
                path = os.path.normpath(os.path.join(os.path.dirname(path), target))
            else:
                raise AnsibleError("fetching %s: more than %d symbolic links"
                                   % (in_path, MAX_LINKS))
            chunks, _stat = self.engine.get_archive(self._container(), path)
            # a fresh, unpredictable file beside the destination (O_EXCL: never written
            # through a link someone placed there), renamed over it when complete
            out_bytes = to_bytes(out_path, errors="surrogate_or_strict")
            fd, tmp = tempfile.mkstemp(prefix=b".longboat-fetch-",
                                       dir=os.path.dirname(out_bytes) or b".")
            try:
                with tempfile.TemporaryFile() as archive:
                    for chunk in chunks:
                        archive.write(chunk)
                    archive.seek(0)
                    with os.fdopen(fd, "wb") as out:
                        fd = -1
                        copy_single_file(archive, os.path.basename(path), out)
                os.chmod(tmp, 0o666 & ~_umask())
                os.rename(tmp, out_bytes)
            except BaseException:
                if fd >= 0:
                    os.close(fd)
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
        except APIError as exc:
            if exc.status == 404:
                raise AnsibleFileNotFound("%s not found in %s" % (in_path, self._container()))
            raise AnsibleError("fetching %s from %s: %s"
                               % (in_path, self._container(), exc.message))
        except (ClientError, tarfile.TarError) as exc:
            raise AnsibleError("fetching %s from %s: %s" % (in_path, self._container(), exc))

    def close(self):
        if self.engine is not None:
            self.engine.close()
        self.engine = None
        self._connected = False

    def reset(self):
        self.close()
