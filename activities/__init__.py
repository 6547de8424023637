"""Activities: the payment's steps that do I/O, turning vendor answers into workflow facts.

One module per vendor (``alvys``, ...) holds the vendor's details; ``payments`` holds the
activity definitions the workflow calls by name and routes each to its vendor.
"""
