"""Every table module, imported for ``SQLModel.metadata`` (see ``models.all_tables``)."""

import models.fees
import models.registration
import models.schools
import models.sittings

__all__ = ["models"]
