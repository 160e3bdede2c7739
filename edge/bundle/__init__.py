"""Bundles on the device: one module per stage, from the file format to the installed store.

    format     file names, format version, size limits, sha256_file, check_relpath (the one
               safe-relative-path rule for manifest paths and archive members)
    manifest   read_manifest (fields, types, bounds, version) and verify_files (sizes, hashes)
    catalogue  CatalogItem, CatalogItems (item metadata as columns), read_catalogue (embeddings,
               scales, priors)
    signing    ed25519 signatures on the device: TrustedKeys, verify_signature, key_id, ...
    reader     Bundle: a bundle folder opened only after it verifies
    smoke      smoke_query: every model run once on every installed backend
    archive    InstallLimits, unpack_archive and copy_bundle_folder into a staging folder
    store      BundleStore (pointer, lock, install, rollback, cleanup), InstalledBundle,
               resolve_bundle, bundle_id

Imports run one way: format <- manifest, catalogue, signing <- reader <- smoke <- store, and
archive <- store. Nothing here imports torch, transformers or the media decoders.

    >>> bundle = Bundle.open("bundle/")
    >>> store = BundleStore("/var/lib/edgerec"); store.install("bundle.tar")
"""

from edge.bundle.archive import InstallLimits, copy_bundle_folder, pack_archive, unpack_archive
from edge.bundle.catalogue import CatalogItem, CatalogItems
from edge.bundle.format import FORMAT, FORMAT_VERSION, MANIFEST, MAX_MANIFEST_BYTES, SIGNATURE, check_relpath, sha256_file
from edge.bundle.manifest import read_manifest, verify_files
from edge.bundle.reader import Bundle
from edge.bundle.signing import TrustedKeys, key_id, load_public_key, read_signature, verify_signature
from edge.bundle.smoke import smoke_query
from edge.bundle.store import BundleStore, InstalledBundle, bundle_id, resolve_bundle

__all__ = [
    "Bundle", "CatalogItem", "CatalogItems",
    "BundleStore", "InstalledBundle", "InstallLimits", "resolve_bundle", "bundle_id", "smoke_query",
    "pack_archive", "unpack_archive", "copy_bundle_folder",
    "TrustedKeys", "verify_signature", "read_signature", "load_public_key", "key_id",
    "FORMAT", "FORMAT_VERSION", "MANIFEST", "MAX_MANIFEST_BYTES", "SIGNATURE", "sha256_file", "check_relpath",
    "read_manifest", "verify_files",
]
