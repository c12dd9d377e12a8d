"""``nnfast.nn.functional`` (conventionally ``F``): the stateless ops.

One private module per op family; each lists its public names in ``__all__``.
"""
from ._activation import *  # noqa: F401,F403
from ._attention import *  # noqa: F401,F403
from ._conv import *  # noqa: F401,F403
from ._dropout import *  # noqa: F401,F403
from ._linear import *  # noqa: F401,F403
from ._loss import *  # noqa: F401,F403
from ._misc import *  # noqa: F401,F403
from ._norm import *  # noqa: F401,F403
from ._pool import *  # noqa: F401,F403
from ._rnn import *  # noqa: F401,F403
from ._transformer import *  # noqa: F401,F403
from ..sparse import embedding as embedding  # noqa: F401,E402
from ..sparse import embedding_bag as embedding_bag  # noqa: F401,E402
