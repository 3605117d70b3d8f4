"""Reading and writing the files examflow exchanges: spreadsheets, key files, calendars.

models/ never imports this package; the shells and tasks call it and pass plain values on.
"""
