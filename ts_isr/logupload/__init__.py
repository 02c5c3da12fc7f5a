"""Upload a device's syslog files to ThreatSTOP over HTTPS: every line once, none lost.

Shared by ``loguploadclient`` (Cisco) and ``tsadmin logs`` (Linux host): it
knows files, a URL and a device's identity; of a config it only reads the
upload keys both schemas share (:func:`upload_configured`).

How one run goes (:func:`upload_logs`, under a lock):

1. **Rotate first.**  The live log (``logfile``, written by syslog-ng) is
   renamed into the spool directory ``<logfile>.spool/`` (same filesystem,
   so the rename is atomic) under a UTC time stamp, e.g.
   ``device.log.20261121T122242.123456Z``; then the reopen command
   (default ``syslog-ng-ctl reopen``; SIGUSR1 does the same) makes
   syslog-ng close it and start a new live file.  Lines that arrive in
   between still land in the renamed file, which is uploaded only once no
   process holds it open (checked in ``/proc``), so a file being written is
   never sent half.  We rotate ourselves, rather than wait for logrotate,
   so that each run sends everything logged up to that moment.
2. **logrotate's files too.**  Files logrotate rotated beside the live log
   (``device.log.1``, ``device.log-20261121``, ``device.log.2.gz``) are
   moved into the spool the same way; gzip ones are inflated there first.
3. **Upload, oldest first,** in parts of at most ``part_size`` bytes
   (5 MB by default, the vendor's web form's limit) cut after a newline.
   A part counts as sent only when the server answers 2xx; its end offset
   is then recorded in ``<state_dir>/logupload/<file>.json`` so a later run
   resumes after the last confirmed part.  Any failure stops the run and
   leaves the rest for the next one; nothing is ever deleted unsent.
4. **Keep, then expire.**  A fully sent file moves to ``<spool>/uploaded/``
   (its mtime set to the upload time) and is deleted ``keep_days`` later.

Wire format: the vendor does not publish one, so the project chose this; it
lives only in the "Wire format" section of :mod:`ts_isr.logupload.packing`
(FIELDS, FILE_FIELD, FILE_CONTENT_TYPE, form_fields, part_file_name).
One HTTPS ``POST`` to ``url`` per part, ``multipart/form-data`` with the
text fields ``device_ip`` (the address ThreatSTOP knows the device by),
``device_id`` (its identifier), ``file_name`` (the spool file's name),
``part`` (1, 2, ...), ``offset`` and ``length`` (the part's bytes in the
uncompressed file), ``sha256`` (of the uncompressed part), ``final``
(``yes`` on a file's last part), then the file field ``logfile``:
``<file_name>.part<N>.gz``, ``application/gzip``.  ``file_name`` with
``offset`` identifies a part, so a server can drop a part it already has
(one sent again after its answer was lost).  Redirects are refused: a 302
turned into a GET would look like a confirmation.

The package, one idea a module: :mod:`.packing` (parts, gzip, the multipart
body), :mod:`.spoolfiles` and :mod:`.spool` (rotation, adoption, progress,
expiry, and the folder checks), :mod:`.uploader` (HTTPS) with :mod:`.deadline`
(each request's total time), :mod:`.run` (the run that wires them).

Root trusts neither the host's other users nor the server: a log folder,
spool or ``state_dir`` another user could change is refused and no file is
opened through a symlink; each request ends by a deadline derived from its
size, at most a few KiB of an answer are read, and the server's words are
escaped before they are shown.
"""

from ts_isr.logupload.packing import (
    CHUNK,
    DEFAULT_PART_SIZE,
    FIELDS,
    FILE_CONTENT_TYPE,
    FILE_FIELD,
    Device,
    MultipartBody,
    Packed,
    Part,
    UploadError,
    compress_range,
    form_fields,
    line_cut,
    pack_part,
    part_file_name,
)
from ts_isr.logupload.run import UploadReport, backlog_of, upload_configured, upload_logs
from ts_isr.logupload.spool import DEFAULT_REOPEN_COMMAND, LogSpool, Progress
from ts_isr.logupload.spoolfiles import is_rotated_name, is_spool_name, opened_for_writing, spool_name
from ts_isr.logupload.uploader import KEEPALIVE_TRUST, Destination, Uploader, default_ca_bundle

__all__ = [
    "CHUNK",
    "DEFAULT_PART_SIZE",
    "DEFAULT_REOPEN_COMMAND",
    "FIELDS",
    "FILE_CONTENT_TYPE",
    "FILE_FIELD",
    "KEEPALIVE_TRUST",
    "Destination",
    "Device",
    "LogSpool",
    "MultipartBody",
    "Packed",
    "Part",
    "Progress",
    "UploadError",
    "UploadReport",
    "Uploader",
    "backlog_of",
    "compress_range",
    "default_ca_bundle",
    "form_fields",
    "is_rotated_name",
    "is_spool_name",
    "line_cut",
    "opened_for_writing",
    "pack_part",
    "part_file_name",
    "spool_name",
    "upload_configured",
    "upload_logs",
]
