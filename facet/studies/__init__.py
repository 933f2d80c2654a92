"""Studies: research runs whose results are reports under docs/, not parts of the library.

The library never imports them. :mod:`facet.studies.sevennet_trim` trims SevenNet-0's radial
MLPs to linear maps (it runs in the teacher environment, with torch and sevenn).
"""
