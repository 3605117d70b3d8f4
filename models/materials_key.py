"""What goes into a site's PDFs, as one hash: the key its rendered materials are stored under.

The hash covers everything the PDFs show (models.materials_data.SiteMaterials: the sitting's
names and exam day, the site, every room and slot with its capacity, every seated candidate
with ticket number, masked ID, school, room and seat) and the renderer's version. So a
re-arrangement, a changed room or a late registration gives a new key, and the file stored
under the old key is never served for the new data; an unchanged site keeps its key.
"""

import hashlib

from models.materials_data import SiteMaterials


def materials_digest(materials: SiteMaterials, renderer_version: str) -> str:
    """A SHA-256 hex digest of the materials' canonical JSON and the renderer's version."""
    payload = materials.model_dump_json().encode()
    return hashlib.sha256(renderer_version.encode() + b"\n" + payload).hexdigest()
