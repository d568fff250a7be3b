"""The ``tls:`` keys of the listeners in the configuration: what parses, and every problem
with its path and a message naming the file (never quoting key material), through the same
loading ``otelgate check-config`` and ``otelgate run`` use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.cli import main as otelgate
from gateway.config.loading import load_config, parse_config
from gateway.security.tls import (
    GrpcTlsSettings,
    TlsSettings,
    common_name_of_certificate,
    subject_of_certificate,
)
from gateway.security.tls_context import ServerTls
from tests.gateway.config.helpers import issues_of, otlp_receiver, patched
from tests.support.certs import TestCa, write_encrypted_key, write_unrelated_key

GRPC = "receivers.otlp.protocols.grpc"
HTTP = "receivers.otlp.protocols.http"


@pytest.fixture
def ca(tmp_path: Path) -> TestCa:
    return TestCa(tmp_path, "ca")


def tls(ca: TestCa, **more: Any) -> dict[str, Any]:
    server = ca.server()
    return {"cert_file": str(server.cert_file), "key_file": str(server.key_file), **more}


def with_tls(path: str, settings: dict[str, Any]) -> str:
    """BASE with ``settings`` as the ``tls`` of the listener at ``path``."""
    endpoint = {GRPC: "0.0.0.0:4317", HTTP: "0.0.0.0:4318"}.get(path, "127.0.0.1:8888")
    return patched((path, {"endpoint": endpoint, "tls": settings}))


def test_defaults_and_every_key(ca: TestCa) -> None:
    plain = tls(ca)
    full = tls(ca, client_ca_file=str(ca.ca_file), min_version="1.3", reload_interval="30s")
    config = parse_config(
        patched(
            (GRPC, {"endpoint": "0.0.0.0:4317", "tls": plain}),
            (HTTP, {"endpoint": "0.0.0.0:4318", "tls": full}),
            ("admin", {"endpoint": "127.0.0.1:8888", "tls": plain}),
        ),
        environ={},
    )
    protocols = otlp_receiver(config).protocols
    assert protocols.grpc is not None and protocols.http is not None
    grpc_tls, http_tls, admin_tls = protocols.grpc.tls, protocols.http.tls, config.admin.tls
    assert isinstance(grpc_tls, GrpcTlsSettings) and isinstance(admin_tls, TlsSettings)
    assert (grpc_tls.min_version, grpc_tls.reload_interval, grpc_tls.client_ca_file) == (
        "1.2",
        None,
        None,
    )
    assert http_tls is not None
    assert (http_tls.min_version, http_tls.reload_interval) == ("1.3", 30.0)
    assert http_tls.client_ca_file == str(ca.ca_file)


def test_tls_is_off_by_default() -> None:
    config = parse_config(patched((HTTP, {})), environ={})
    protocols = otlp_receiver(config).protocols
    assert protocols.grpc is not None and protocols.http is not None
    assert (protocols.grpc.tls, protocols.http.tls, config.admin.tls) == (None, None, None)


@pytest.mark.parametrize(("written", "expected"), [(1.2, "1.2"), (1.3, "1.3"), ("1.3", "1.3")])
def test_min_version_as_yaml_number_or_string(ca: TestCa, written: Any, expected: str) -> None:
    config = parse_config(with_tls(HTTP, tls(ca, min_version=written)), environ={})
    http = otlp_receiver(config).protocols.http
    assert http is not None and http.tls is not None
    assert http.tls.min_version == expected


@pytest.mark.parametrize("version", ["1.0", "1.1", 1.0, 1.1])
def test_old_tls_versions_are_refused_with_the_reason(ca: TestCa, version: Any) -> None:
    [(path, message)] = issues_of(with_tls(HTTP, tls(ca, min_version=version)))
    assert path == f"{HTTP}.tls.min_version"
    assert f"TLS {float(version):.1f} is not offered" in message and "RFC 8996" in message


def test_unknown_version(ca: TestCa) -> None:
    [(path, message)] = issues_of(with_tls(HTTP, tls(ca, min_version="1.4")))
    assert (path, message) == (f"{HTTP}.tls.min_version", "must be '1.2' or '1.3' (got '1.4')")


def test_grpc_refuses_min_version_1_3_rather_than_not_enforcing_it(ca: TestCa) -> None:
    [(path, message)] = issues_of(with_tls(GRPC, tls(ca, min_version="1.3")))
    assert path == f"{GRPC}.tls.min_version"
    assert message.startswith("grpcio cannot enforce a minimum TLS version")


def test_missing_and_unknown_keys(ca: TestCa) -> None:
    settings = tls(ca, ca_file="x.pem")
    del settings["key_file"]
    assert sorted(issues_of(with_tls(GRPC, settings))) == [
        (f"{GRPC}.tls.ca_file", "unknown key"),
        (f"{GRPC}.tls.key_file", "is required"),
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [(0, "must be greater than 0 (got 0)"), ("soon", "invalid duration 'soon'")],
)
def test_reload_interval_errors(ca: TestCa, value: Any, message: str) -> None:
    [(path, found)] = issues_of(with_tls(HTTP, tls(ca, reload_interval=value)))
    assert path == f"{HTTP}.tls.reload_interval"
    assert found.startswith(message)


def test_files_that_do_not_exist(tmp_path: Path) -> None:
    settings = {
        "cert_file": str(tmp_path / "nope.pem"),
        "key_file": str(tmp_path / "nope.key"),
        "client_ca_file": str(tmp_path / "ca.pem"),
    }
    assert sorted(issues_of(with_tls(GRPC, settings))) == [
        (f"{GRPC}.tls.cert_file", f"{tmp_path}/nope.pem does not exist"),
        (f"{GRPC}.tls.client_ca_file", f"{tmp_path}/ca.pem does not exist"),
        (f"{GRPC}.tls.key_file", f"{tmp_path}/nope.key does not exist"),
    ]


def test_a_directory_is_not_a_file(ca: TestCa, tmp_path: Path) -> None:
    [(path, message)] = issues_of(with_tls(HTTP, tls(ca, client_ca_file=str(tmp_path))))
    assert (path, message) == (
        f"{HTTP}.tls.client_ca_file",
        f"{tmp_path} is a directory, not a file",
    )


def test_an_unreadable_file(ca: TestCa, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = tls(ca)
    real_open = open

    def refuse_the_key(path: Any, *args: Any, **kwargs: Any) -> Any:
        # chmod 0 would not stop root (CI runs as root): refuse as the kernel would.
        if str(path) == settings["key_file"]:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("gateway.security.tls.open", refuse_the_key, raising=False)
    [(path, message)] = issues_of(with_tls(HTTP, settings))
    assert (path, message) == (
        f"{HTTP}.tls.key_file",
        f"cannot read {settings['key_file']}: permission denied",
    )


def test_key_that_does_not_match_the_certificate(ca: TestCa, tmp_path: Path) -> None:
    settings = tls(ca)
    settings["key_file"] = str(write_unrelated_key(tmp_path / "other.key"))
    [(path, message)] = issues_of(with_tls(GRPC, settings))
    assert path == f"{GRPC}.tls.key_file"
    assert message == f"{tmp_path}/other.key does not match cert_file {settings['cert_file']}"


def test_admin_listener_errors_have_their_path(ca: TestCa, tmp_path: Path) -> None:
    settings = tls(ca)
    settings["key_file"] = str(write_unrelated_key(tmp_path / "other.key"))
    [(path, _)] = issues_of(with_tls("admin", settings))
    assert path == "admin.tls.key_file"


def test_swapped_cert_and_key(ca: TestCa) -> None:
    server = ca.server()
    settings = {"cert_file": str(server.key_file), "key_file": str(server.cert_file)}
    found = dict(issues_of(with_tls(HTTP, settings)))
    assert found[f"{HTTP}.tls.cert_file"] == (
        f"{server.key_file} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----) "
        "(it holds a private key: are cert_file and key_file swapped?)"
    )
    assert found[f"{HTTP}.tls.key_file"] == (
        f"{server.cert_file} holds no PEM private key (expected -----BEGIN PRIVATE KEY-----) "
        "(it holds a certificate: are cert_file and key_file swapped?)"
    )


def test_files_in_der_or_garbage(ca: TestCa, tmp_path: Path) -> None:
    der = tmp_path / "ca.der"
    der.write_bytes(ca.cert.public_bytes(Encoding.DER))
    [(path, message)] = issues_of(with_tls(HTTP, tls(ca, client_ca_file=str(der))))
    assert path == f"{HTTP}.tls.client_ca_file"
    assert message.endswith("(it looks like DER: convert it to PEM with openssl)")
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    [(path, message)] = issues_of(with_tls(HTTP, tls(ca, client_ca_file=str(broken))))
    assert message.startswith(f"{broken}: a certificate in it cannot be parsed")


def test_key_problems_never_quote_the_key(ca: TestCa, tmp_path: Path) -> None:
    server = ca.server()
    encrypted = write_encrypted_key(tmp_path / "encrypted.key", server.key)
    settings = {"cert_file": str(server.cert_file), "key_file": str(encrypted)}
    [(path, message)] = issues_of(with_tls(HTTP, settings))
    assert path == f"{HTTP}.tls.key_file"
    assert message.startswith(f"{encrypted} holds an encrypted private key")
    secret = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgSECRETSECRETSECRET"
    garbled = tmp_path / "garbled.key"
    garbled.write_text(f"-----BEGIN PRIVATE KEY-----\n{secret}\n-----END PRIVATE KEY-----\n")
    settings["key_file"] = str(garbled)
    [(path, message)] = issues_of(with_tls(HTTP, settings))
    assert message == f"{garbled}: the private key cannot be parsed"
    assert "SECRET" not in message


def test_a_bundle_with_intermediates_and_a_combined_key_file(ca: TestCa, tmp_path: Path) -> None:
    server = ca.server()
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(server.cert_pem + ca.pem)
    combined = tmp_path / "combined.pem"
    combined.write_bytes(server.key_pem + server.cert_pem)
    settings = {"cert_file": str(bundle), "key_file": str(combined)}
    config = parse_config(with_tls(HTTP, settings), environ={})
    assert otlp_receiver(config).protocols.http is not None


def test_load_config_and_check_config_report_the_path(
    ca: TestCa, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tls(ca)
    settings["key_file"] = str(write_unrelated_key(tmp_path / "other.key"))
    path = tmp_path / "otelgate.yaml"
    path.write_text(with_tls(GRPC, settings))
    with pytest.raises(Exception, match=rf"{GRPC}\.tls\.key_file: .*does not match cert_file"):
        load_config(path, environ={})
    assert otelgate(["check-config", str(path)]) == 1
    assert f"{GRPC}.tls.key_file: {tmp_path}/other.key does not match" in capsys.readouterr().err
    path.write_text(with_tls(GRPC, tls(ca)))
    assert otelgate(["check-config", str(path)]) == 0


def test_start_names_a_file_broken_after_validation(ca: TestCa) -> None:
    settings = TlsSettings.model_validate(tls(ca))
    Path(settings.cert_file).write_text("not a certificate\n")
    with pytest.raises(OSError, match=r"^otlp/http: tls\.cert_file: .* holds no PEM certificate"):
        ServerTls("otlp/http", settings).load()


def test_subject_string_is_rfc4514_most_specific_first(ca: TestCa) -> None:
    client = ca.client("check,out", organization="Acme Corp")
    assert subject_of_certificate(client.cert_pem) == r"CN=check\,out,O=Acme Corp"
    der = client.cert.public_bytes(Encoding.DER)
    assert subject_of_certificate(der) == subject_of_certificate(client.cert_pem.decode())
    assert common_name_of_certificate(der) == "check,out"


def test_material_read_from_one_combined_file_never_shows_the_key(
    ca: TestCa, tmp_path: Path
) -> None:
    server = ca.server()
    combined = tmp_path / "all-in-one.pem"
    combined.write_bytes(server.key_pem + server.cert_pem + ca.pem)
    path = str(combined)
    settings = TlsSettings(cert_file=path, key_file=path, client_ca_file=path)
    tls = ServerTls("otlp/http", settings)
    tls.load()
    tls.ssl_context()
    assert tls.material is not None
    assert "PRIVATE KEY" not in repr(tls.material) and "PRIVATE KEY" not in repr(settings)
    assert tls.material.leaf.subject.rfc4514_string() == server.subject
