"""TuSimple-format lane data: label files and maps (labels), the torch Dataset (tusimple), a synthetic set."""
