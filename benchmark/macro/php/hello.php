<?php
// Hello-world script of the macro benchmark (benchmark/macro/run.sh).
echo "Hello, world!\n";
