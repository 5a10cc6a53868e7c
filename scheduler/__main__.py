from scheduler.cli import console

console()
