"""Administrative areas: district → subdistrict → community → grid cell, and point → area paths."""
