"""What the converge left on each lab host: the engine answers on its socket, the
bootstrapped image is there, the web server answers on its published port."""

from __future__ import annotations

import json

LONGBOAT = "/opt/mol-longboat/bin/longboat"


def test_the_engine_socket_is_up(host):
    assert host.socket("unix:///run/longboat/longboat.sock").is_listening
    status = host.run(f"{LONGBOAT} system service status")
    assert status.rc == 0, status.stdout + status.stderr


def test_the_image_is_present(host):
    found = host.run(f"{LONGBOAT} image inspect busybox:latest")
    assert found.rc == 0, found.stderr
    assert json.loads(found.stdout)[0]["RepoTags"] == ["busybox:latest"]


def test_the_container_answers_on_its_published_port(host):
    address = host.ansible.get_variables()["ansible_host"]
    fetch = ("import urllib.request, sys; "
             "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())")
    page = host.run(f"python3 -c '{fetch}' http://{address}:8080/")
    assert page.rc == 0, page.stderr
    assert page.stdout.strip() == f"hello from {host.backend.get_hostname()}"
