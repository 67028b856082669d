# Tests of sessionplus/management/commands/*.py. Not in a commands/ package: "tests" is an
# installed app, so Django would list every module there as a management command.
