"""The vocabulary every package shares: settings, the message contract, records, batch events.

The bottom layer (see ARCHITECTURE.md): it imports no other package of this project, so any
package may import it.
"""

__version__ = "0.1.0"
