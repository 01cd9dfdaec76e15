from pages.common import ctx

c = ctx()
_ = c._
