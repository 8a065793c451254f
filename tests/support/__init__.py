"""Data and callers shared by the test suite and the benchmarks (issue #20).

`people`: users written as the models write them (phone and name encrypted, the phone's keyed
hash beside them), signed-in sessions and their tokens, volunteers on duty with a position.
`tips`: the fill of a million tips the list, queue and grid benchmarks measure.

No pytest and no benchmark machinery here: each function takes a connection or an application
and leaves committing to its caller unless it says otherwise."""
